package shelltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// NotIsolated: the case arrived, but the response did not happen, did not
// hold, or could not be undone.
const NotIsolated Outcome = "not-isolated"

// RespondCheck makes a test prove the response too: a SOAR playbook,
// through the responder, isolates the pod of the new case, and the pod
// loses the network it had.
type RespondCheck struct {
	// Probe is a Service the pod reaches before the shell, and must not
	// reach once isolated. Its ClusterIP is used, not its name: the
	// check is about the connection, not about DNS.
	ProbeNamespace, ProbeService string
	// Timeout bounds the wait for the isolation (default 60 s).
	Timeout time.Duration
	// KeepIsolated leaves the pod isolated; else it is released and the
	// connection must come back.
	KeepIsolated bool
}

// ResponseTimeline is what the response check saw.
type ResponseTimeline struct {
	Action string `json:"action"`
	// Probe is the address the pod connected to.
	Probe string `json:"probe"`
	// Isolated is when the pod carried the isolation label; IsolatedFor
	// its value (the case).
	Isolated    *time.Time `json:"isolated,omitempty"`
	IsolatedFor string     `json:"isolatedFor,omitempty"`
	// Policy is the NetworkPolicy that selects the pod.
	Policy string `json:"policy,omitempty"`
	// Blocked is when the probe first failed from the isolated pod.
	Blocked *time.Time `json:"blocked,omitempty"`
	// StillRunning: the isolated pod kept running, for forensics.
	StillRunning bool `json:"stillRunning"`
	// Latency is shell opened -> pod isolated.
	Latency time.Duration `json:"latencyNanoseconds,omitempty"`
	// Notes are the titles of the case's notes (the responder's audit).
	Notes    []string   `json:"notes,omitempty"`
	Released *time.Time `json:"released,omitempty"`
	Restored *time.Time `json:"restored,omitempty"`
}

// probeTimeout bounds one connection attempt from the pod.
const probeTimeout = 3 * time.Second

// probeAddr is the ClusterIP and first port of the probe Service.
func (t *Tester) probeAddr(ctx context.Context, rc *RespondCheck) (string, error) {
	svc, err := t.Kube.CoreV1().Services(rc.ProbeNamespace).Get(ctx, rc.ProbeService, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("the Service to connect to, %s/%s: %w (is the responder installed? install --responder)", rc.ProbeNamespace, rc.ProbeService, err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
		return "", fmt.Errorf("Service %s/%s has no ClusterIP and port to connect to", rc.ProbeNamespace, rc.ProbeService)
	}
	return net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port))), nil
}

// connects tells whether the pod can open a TCP connection to addr: an
// isolation must cut that, whatever is spoken on top of it. A TCP connect
// with nc, not an HTTPS request: busybox's wget cannot agree on a cipher
// suite with Go's TLS servers (it fails with alert 40 against the
// responder and the API server alike). The command runs without a
// terminal, so it raises no shell alert of its own.
func (t *Tester) connects(ctx context.Context, ns string, tg target, addr string) (bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	cmd := []string{"timeout", strconv.Itoa(int(probeTimeout.Seconds()) + 1), "nc", "-w", strconv.Itoa(int(probeTimeout.Seconds())), host, port}
	req := t.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(tg.pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: tg.container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	exec, err := executor(t, req.URL().String())
	if err != nil {
		return false, err
	}
	var out bytes.Buffer
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &out})
	var code utilexec.CodeExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &code) && code.Code == 127:
		return false, fmt.Errorf("the pod's image lacks timeout or nc to test the connection (%s)", truncate(out.String(), 200))
	case errors.As(err, &code):
		return false, nil
	}
	return false, fmt.Errorf("exec the connection test in %s/%s: %w", ns, tg.pod, err)
}

// checkResponse waits for the playbook's isolation of the pod, proves the
// connection is cut while the pod runs, lists the case's notes, then
// releases the pod and waits for the connection to come back.
func (t *Tester) checkResponse(ctx context.Context, o Options, tg target, addr string, res *Result, p progress) error {
	rc := o.Respond
	tl := res.Response
	timeout := rc.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	p.step("waiting for the playbook to isolate %s/%s (up to %s)", o.Namespace, tg.pod, timeout)
	pods := t.Kube.CoreV1().Pods(o.Namespace)
	deadline := time.Now().Add(timeout)
	for {
		pod, err := pods.Get(ctx, tg.pod, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("pod %s/%s: %w", o.Namespace, tg.pod, err)
		}
		if v, ok := pod.Labels[respond.IsolationLabel]; ok {
			now := time.Now().UTC()
			tl.Isolated, tl.IsolatedFor, tl.Latency = &now, v, now.Sub(res.ShellOpened)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pod %s/%s not isolated %s after its case %d was stored: is the mock SOAR's playbook set (install --mock-phantom --responder), or a SOAR playbook calling the responder?", o.Namespace, tg.pod, timeout, res.CaseID)
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
	p.step("pod isolated (label %s=%s) %s after the shell", respond.IsolationLabel, tl.IsolatedFor, tl.Latency.Round(time.Millisecond))
	if _, err := t.Kube.NetworkingV1().NetworkPolicies(o.Namespace).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{}); err != nil {
		return fmt.Errorf("pod isolated, but NetworkPolicy %s/%s: %w", o.Namespace, respond.IsolationPolicy, err)
	}
	tl.Policy = o.Namespace + "/" + respond.IsolationPolicy

	// Enforcement takes a moment after the policy and label appear.
	if err := t.waitConnects(ctx, o.Namespace, tg, addr, false, 30*time.Second); err != nil {
		return fmt.Errorf("pod isolated, but it still reaches %s: %w; does the cluster's network plugin enforce NetworkPolicies?", addr, err)
	}
	now := time.Now().UTC()
	tl.Blocked = &now
	p.step("the isolated pod cannot reach %s any more", addr)
	if pod, err := pods.Get(ctx, tg.pod, metav1.GetOptions{}); err == nil && pod.DeletionTimestamp == nil && pod.Status.Phase == corev1.PodRunning {
		tl.StillRunning = true
	}
	tl.Notes = t.caseNotes(ctx, o, res.CaseID)
	if rc.KeepIsolated {
		return nil
	}
	if err := t.release(ctx, o, tg, res); err != nil {
		return err
	}
	now = time.Now().UTC()
	tl.Released = &now
	p.step("released %s/%s; waiting for its connection to come back", o.Namespace, tg.pod)
	if err := t.waitConnects(ctx, o.Namespace, tg, addr, true, 30*time.Second); err != nil {
		return fmt.Errorf("pod released, but it does not reach %s again: %w", addr, err)
	}
	now = time.Now().UTC()
	tl.Restored = &now
	return nil
}

// waitConnects retries the connection test until it gives want.
func (t *Tester) waitConnects(ctx context.Context, ns string, tg target, addr string, want bool, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := t.connects(ctx, ns, tg, addr)
		if err != nil {
			return err
		}
		if ok == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still %s after %s", map[bool]string{true: "connecting", false: "not connecting"}[ok], within)
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// release undoes the isolation with the user's rights, noted in the case.
func (t *Tester) release(ctx context.Context, o Options, tg target, res *Result) error {
	r := &respond.Responder{Kube: t.Kube, Policy: respond.Policy{Namespaces: []string{o.Namespace}}}
	if o.SOAR != nil && o.SOAR.Client != nil {
		r.Audit = respond.NoteAuditor{SOAR: o.SOAR.Client, Source: "kubectl falco-phantom test-shell"}
	}
	_, err := r.Do(ctx, respond.Request{Action: respond.Release, Namespace: o.Namespace, Pod: tg.pod, CaseID: res.CaseID,
		Reason: "test-shell " + res.Marker + " done", RequestedBy: "kubectl falco-phantom test-shell"}, "test-shell")
	if err != nil && respond.CodeOf(err) != respond.PodNotFound {
		return fmt.Errorf("release %s/%s: %w", o.Namespace, tg.pod, err)
	}
	return nil
}

// caseNotes lists the titles of the case's notes, waiting a little for
// the responder's, which it writes after acting.
func (t *Tester) caseNotes(ctx context.Context, o Options, caseID int64) []string {
	var titles []string
	for range 10 {
		page, err := o.SOAR.Client.Notes(ctx, phantom.Query{PageSize: 50, Sort: "id", Order: "asc", Filters: map[string]any{"container": caseID}})
		if err == nil {
			titles = titles[:0]
			for _, n := range page.Data {
				titles = append(titles, n.Title)
			}
			if len(titles) > 0 && strings.Contains(strings.Join(titles, "\n"), "isolate") {
				return titles
			}
		}
		if !sleep(ctx, 500*time.Millisecond) {
			break
		}
	}
	return titles
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
