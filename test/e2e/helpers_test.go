//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/plugin"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// run runs "kubectl falco-phantom ARGS" (the plugin's command tree, in
// this process) against the lab, and returns its standard output, its
// progress (standard error) and its error.
func (e *env) run(t *testing.T, ctx context.Context, args ...string) (out, progress string, err error) {
	t.Helper()
	var o, p bytes.Buffer
	args = append(args, "--kubeconfig", e.cluster.Kubeconfig)
	begin := time.Now()
	err = plugin.Run(ctx, args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &o, ErrOut: &p}, os.Getenv)
	t.Logf("kubectl falco-phantom %s: %v after %s", strings.Join(args[:len(args)-2], " "), orOK(err), time.Since(begin).Round(100*time.Millisecond))
	return o.String(), p.String(), err
}

func orOK(err error) string {
	if err == nil {
		return "ok"
	}
	return "error " + err.Error()
}

// waitFor polls check until it returns nil; after timeout it fails the
// test with what it waited for and check's last error.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	begin := time.Now()
	deadline := begin.Add(timeout)
	delay := 100 * time.Millisecond
	for {
		err := check()
		if err == nil {
			t.Logf("waited %s for %s", time.Since(begin).Round(100*time.Millisecond), what)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last: %v", timeout, what, err)
		}
		time.Sleep(delay)
		delay = min(2*delay, time.Second)
	}
}

// clusterIP returns the address of a Service's port; this machine is the
// node, so kube-proxy routes it from here.
func clusterIP(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, name string, port int) string {
	t.Helper()
	svc, err := kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Service %s/%s: %v", ns, name, err)
	}
	return net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(port))
}

// mockSOAR returns a client of the in-cluster mock SOAR, through its
// Service, with the token install stored in its Secret.
func mockSOAR(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string) *phantom.Client {
	t.Helper()
	s, err := kube.CoreV1().Secrets(ns).Get(ctx, install.SecretMock, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("mock SOAR credentials: %v", err)
	}
	c, err := phantom.New(phantom.Config{
		BaseURL:     "http://" + clusterIP(t, ctx, kube, ns, install.ReleaseMock, 8080),
		Credentials: phantom.StaticCredentials{Token: string(s.Data["token"])},
		Timeout:     10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// postAlert sends a Falco alert to falcosidekick's Service, as Falco's
// HTTP output does.
func postAlert(ctx context.Context, addr string, ev *falco.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", addr, resp.Status, b)
	}
	return nil
}

// listen subscribes to the alerts on the in-cluster NATS (through its
// Service: this machine is the node) and sends the subject of the first
// one that carries marker. The subscription ends with the test.
func listen(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, marker string) <-chan string {
	t.Helper()
	addr := clusterIP(t, ctx, kube, ns, install.ReleaseNATS, 4222)
	nc, err := nats.Connect("nats://"+addr, nats.Name("falco-phantom-e2e"), nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatalf("connect to NATS at %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = nc.Drain() })
	subjects := make(chan string, 1)
	_, err = nc.Subscribe("falco.>", func(m *nats.Msg) {
		if bytes.Contains(m.Data, []byte(marker)) {
			select {
			case subjects <- m.Subject:
			default:
			}
		}
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		t.Fatalf("subscribe to falco.> on NATS at %s: %v", addr, err)
	}
	return subjects
}

// findArtifact returns the artifact whose command line is cmdline, or an
// error saying what the mock holds.
func findArtifact(ctx context.Context, soar *phantom.Client, cmdline string) (*phantom.Artifact, error) {
	page, err := soar.Artifacts(ctx, phantom.Query{PageSize: 0})
	if err != nil {
		return nil, err
	}
	for i := range page.Data {
		if page.Data[i].CEF["commandLine"] == cmdline {
			return &page.Data[i], nil
		}
	}
	return nil, fmt.Errorf("no artifact with commandLine %q among the mock's %d", cmdline, page.Count)
}

// dumpOnFailure registers a cleanup that, when t failed, logs what is
// needed to understand why: the pods of ns with their containers' states,
// the namespace's events, the containers' logs, and the end of the
// kubelet's and containerd's logs.
// uninstallOnFailure uninstalls from ns when the test failed, after the
// clean-ups registered later (the state dump) ran.
func uninstallOnFailure(t *testing.T, e *env, ns string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			_, _, _ = e.run(t, context.Background(), "uninstall", "-n", ns)
		}
	})
}

func dumpOnFailure(t *testing.T, kube kubernetes.Interface, ns string) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var b strings.Builder
		fmt.Fprintf(&b, "=== state of namespace %s\n", ns)
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			fmt.Fprintf(&b, "pods: %v\n", err)
		} else {
			for _, p := range pods.Items {
				describePod(&b, &p)
			}
		}
		events, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			sort.Slice(events.Items, func(i, j int) bool {
				return eventTime(&events.Items[i]).Before(eventTime(&events.Items[j]))
			})
			fmt.Fprintf(&b, "--- events\n")
			for _, e := range events.Items {
				fmt.Fprintf(&b, "%s %s %s/%s %s: %s\n", eventTime(&e).Format("15:04:05"), e.Type,
					e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, strings.TrimSpace(e.Message))
			}
		}
		if pods != nil {
			tail := int64(40)
			for _, p := range pods.Items {
				for _, c := range p.Spec.Containers {
					logs, err := kube.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, TailLines: &tail}).DoRaw(ctx)
					fmt.Fprintf(&b, "--- logs of %s/%s (last %d lines; %v)\n%s\n", p.Name, c.Name, tail, orOK(err), strings.TrimSpace(string(logs)))
				}
			}
		}
		for _, name := range []string{"kubelet", "containerd"} {
			fmt.Fprintf(&b, "--- end of %s\n%s\n", lab.cluster.LogFile(name), fileTail(lab.cluster.LogFile(name), 15))
		}
		t.Log(b.String())
	})
}

func describePod(b *strings.Builder, p *corev1.Pod) {
	fmt.Fprintf(b, "pod %s: phase %s, node %q, IP %s\n", p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			fmt.Fprintf(b, "  condition %s=%s %s %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		state := "unknown"
		switch {
		case cs.State.Running != nil:
			state = "running since " + cs.State.Running.StartedAt.Format(time.TimeOnly)
		case cs.State.Waiting != nil:
			state = "waiting: " + cs.State.Waiting.Reason + " " + cs.State.Waiting.Message
		case cs.State.Terminated != nil:
			state = fmt.Sprintf("terminated: exit %d %s %s", cs.State.Terminated.ExitCode, cs.State.Terminated.Reason, cs.State.Terminated.Message)
		}
		fmt.Fprintf(b, "  container %s (%s): ready %v, restarts %d, %s\n", cs.Name, cs.Image, cs.Ready, cs.RestartCount, state)
	}
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}

func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
