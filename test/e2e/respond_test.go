//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/shelltest"
)

// TestRespondOnARealCluster runs the response half on the lab, where
// kube-router's firewall enforces NetworkPolicies: install --mock-phantom
// --responder; test-shell --respond isolate (shell -> Falco -> case ->
// the mock's playbook -> the responder -> the pod isolated, its
// connection cut, then released); an analyst's respond isolate and
// release on another pod, with their audit notes in the case; the
// refusals (the pipeline's namespace, a wrong token), which change
// nothing; uninstall leaving the isolation in place, and saying so.
func TestRespondOnARealCluster(t *testing.T) {
	e := needLab(t)
	ctx := t.Context()
	kube := e.cluster.Kube
	const ns, victims = "fp-respond", "fp-victims"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: victims}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bg := context.WithoutCancel(ctx)
		_, _, _ = e.run(t, bg, "uninstall", "-n", ns, "--release-isolated")
		_ = kube.CoreV1().Namespaces().Delete(bg, victims, metav1.DeleteOptions{})
	})
	dumpOnFailure(t, kube, ns)
	dumpOnFailure(t, kube, victims)
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	var caseID int64

	step("install with the responder", func(t *testing.T) {
		args := append([]string{"install", "-n", ns, "--mock-phantom", "--responder"}, e.chartArgs...)
		_, progress, err := e.run(t, ctx, append(args, "--image-tag", imageTag, "--timeout", "3m")...)
		if err != nil {
			t.Fatalf("install: %v\n%s", err, progress)
		}
		out, _, err := e.run(t, ctx, "status", "-n", ns)
		if err != nil || !strings.Contains(out, string(install.Responder)) {
			t.Fatalf("status (%v) does not show the responder:\n%s", err, out)
		}
	})

	step("test-shell --respond isolate proves the loop", func(t *testing.T) {
		out, progress, err := e.run(t, ctx, "test-shell", "-n", victims, "--install-namespace", ns, "--image", images.ShellRef,
			"--respond", "isolate", "--timeout", "90s", "-o", "json")
		var res shelltest.Result
		if jerr := json.Unmarshal([]byte(out), &res); jerr != nil {
			t.Fatalf("test-shell printed no result (%v): %v\n%s\n%s", err, jerr, out, progress)
		}
		t.Logf("test-shell --respond isolate: exit %d, %s (%s)\nprogress:\n%s", cmdmain.ExitCode(err), res.Outcome, res.Error, progress)
		if err != nil || res.Outcome != shelltest.Passed || res.Response == nil {
			t.Fatalf("exit %d, outcome %s: %s\n%v", cmdmain.ExitCode(err), res.Outcome, res.Error, res.Diagnosis)
		}
		r := res.Response
		if r.Isolated == nil || r.Blocked == nil || r.Released == nil || r.Restored == nil || !r.StillRunning ||
			r.Latency <= 0 || r.IsolatedFor != fmt.Sprint(res.CaseID) || r.Policy != victims+"/"+respond.IsolationPolicy {
			t.Errorf("response timeline = %+v", r)
		}
		if !mentions(r.Notes, "isolate") {
			t.Errorf("the case's notes %q lack the responder's isolate note", r.Notes)
		}
		t.Logf("loop latency, shell opened -> pod isolated: %s (the alert was stored in SOAR after %s); the first failed connection %s after the isolation",
			r.Latency.Round(time.Millisecond), res.Latency.Round(time.Millisecond), r.Blocked.Sub(*r.Isolated).Round(time.Millisecond))
		caseID = res.CaseID
	})

	// An analyst's pod to act on, and a connection it had before.
	suspect := sleeperPod("suspect", map[string]string{"app": "suspect"}, "exec sleep 3600")
	runPods(t, ctx, kube, victims, time.Minute, suspect)
	// A TCP connection to the responder's Service (as test-shell checks):
	// isolation must cut it.
	probe := clusterIP(t, ctx, kube, ns, install.ReleaseResponder, install.ResponderPort)
	reaches := func() error {
		host, port, _ := strings.Cut(probe, ":")
		_, err := e.kubectl(ctx, "-n", victims, "exec", "suspect", "--", "timeout", "4", "nc", "-w", "3", host, port)
		return err
	}
	respondCLI := func(t *testing.T, args ...string) (*respond.Result, int, string) {
		t.Helper()
		out, progress, err := e.run(t, ctx, append(append([]string{"respond"}, args...), "--install-namespace", ns, "-o", "json")...)
		var res respond.Result
		if err == nil {
			if jerr := json.Unmarshal([]byte(out), &res); jerr != nil {
				t.Fatalf("respond printed no result: %v\n%s\n%s", jerr, out, progress)
			}
		}
		if err != nil {
			progress += "\nerror: " + err.Error()
		}
		return &res, cmdmain.ExitCode(err), progress
	}

	step("respond isolate cuts the pod off, respond release restores it, both noted in the case", func(t *testing.T) {
		waitFor(t, 30*time.Second, "pod suspect to reach "+probe, reaches)
		begin := time.Now()
		res, code, progress := respondCLI(t, "isolate", "--pod", "suspect", "-n", victims, "--case", fmt.Sprint(caseID), "--reason", "e2e: analyst isolates")
		if code != 0 || !res.Changed {
			t.Fatalf("respond isolate: exit %d, %+v\n%s", code, res, progress)
		}
		waitFor(t, 30*time.Second, "the isolated pod's connection to fail", func() error {
			if reaches() == nil {
				return fmt.Errorf("pod suspect still reaches %s", probe)
			}
			return nil
		})
		t.Logf("respond isolate took %d ms; the connection failed %s after the command started", res.DurationMS, time.Since(begin).Round(10*time.Millisecond))
		p, err := kube.CoreV1().Pods(victims).Get(ctx, "suspect", metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.PodRunning || p.Labels[respond.IsolationLabel] != fmt.Sprint(caseID) {
			t.Fatalf("the isolated pod: %v, phase %s, labels %v", err, p.Status.Phase, p.Labels)
		}
		if again, code, _ := respondCLI(t, "isolate", "--pod", "suspect", "-n", victims, "--case", fmt.Sprint(caseID)); code != 0 || again.Changed {
			t.Errorf("isolating twice: exit %d, changed %v; want 0 and nothing changed", code, again.Changed)
		}

		begin = time.Now()
		res, code, progress = respondCLI(t, "release", "--pod", "suspect", "-n", victims, "--case", fmt.Sprint(caseID), "--reason", "e2e: analyst releases")
		if code != 0 || !res.Changed {
			t.Fatalf("respond release: exit %d, %+v\n%s", code, res, progress)
		}
		waitFor(t, 30*time.Second, "the released pod to reach "+probe+" again", reaches)
		t.Logf("respond release took %d ms; the connection was back %s after the command started", res.DurationMS, time.Since(begin).Round(10*time.Millisecond))

		notes, err := mockSOAR(t, ctx, kube, ns).Notes(ctx, phantom.Query{Filters: map[string]any{"container": caseID}})
		if err != nil {
			t.Fatal(err)
		}
		var mine []string
		for _, n := range notes.Data {
			if strings.Contains(n.Content, "suspect") {
				mine = append(mine, n.Title)
			}
		}
		if !mentions(mine, "isolate") || !mentions(mine, "release") {
			t.Errorf("case %d's notes about pod suspect: %q; want the isolate and the release", caseID, mine)
		}
	})

	step("refusals change nothing and say why", func(t *testing.T) {
		token := secretValue(t, ctx, e, ns, install.SecretResponderToken, "token")
		// The pipeline's own namespace is never acted on by the responder:
		// its mock SOAR's pod stays as it is.
		mocks, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=mockphantom"})
		if err != nil || len(mocks.Items) == 0 {
			t.Fatalf("the mock SOAR's pod: %v", err)
		}
		mock := mocks.Items[0].Name
		status, body := callResponder(t, ctx, e, ns, token, fmt.Sprintf(`{"namespace":%q,"pod":%q}`, ns, mock))
		if status != http.StatusForbidden || !strings.Contains(body, string(respond.NamespaceNotAllowed)) {
			t.Errorf("isolating in the pipeline's namespace: %d %s, want 403 %s", status, body, respond.NamespaceNotAllowed)
		}
		if p, err := kube.CoreV1().Pods(ns).Get(ctx, mock, metav1.GetOptions{}); err != nil || p.Labels[respond.IsolationLabel] != "" {
			t.Errorf("after the refusal the mock's pod is %v (%v), want it not isolated", p.Labels, err)
		}
		// A wrong token, and a pod that does not exist.
		if status, body := callResponder(t, ctx, e, ns, "not-the-token", `{"namespace":"`+victims+`","pod":"suspect"}`); status != http.StatusUnauthorized {
			t.Errorf("a wrong token: %d %s, want 401", status, body)
		}
		if status, body := callResponder(t, ctx, e, ns, token, `{"namespace":"`+victims+`","pod":"no-such-pod"}`); status != http.StatusNotFound ||
			!strings.Contains(body, string(respond.PodNotFound)) {
			t.Errorf("a pod that does not exist: %d %s, want 404 %s", status, body, respond.PodNotFound)
		}
		// The analyst's command refuses what the cluster does not have.
		if _, code, progress := respondCLI(t, "isolate", "--pod", "no-such-pod", "-n", victims); code != 2 || !strings.Contains(progress, "not found") {
			t.Errorf("respond isolate of a pod that does not exist: exit %d, want 2 and \"not found\"\n%s", code, progress)
		}
		p, err := kube.CoreV1().Pods(victims).Get(ctx, "suspect", metav1.GetOptions{})
		if err != nil || p.Labels[respond.IsolationLabel] != "" {
			t.Errorf("after the refusals the pod is %v (%v), want it not isolated", p.Labels, err)
		}
		if err := reaches(); err != nil {
			t.Errorf("after the refusals: %v", err)
		}
	})

	step("the responder isolates on a SOAR request; uninstall leaves it isolated and says so", func(t *testing.T) {
		token := secretValue(t, ctx, e, ns, install.SecretResponderToken, "token")
		cases := mockSOAR(t, ctx, kube, ns)
		status, body := callResponder(t, ctx, e, ns, token, fmt.Sprintf(`{"namespace":%q,"pod":"suspect","case_id":%d,"reason":"e2e: a playbook isolates"}`, victims, caseID))
		if status != http.StatusOK {
			t.Fatalf("POST /v1/actions/isolate: %d %s", status, body)
		}
		waitFor(t, 30*time.Second, "the connection to fail", func() error {
			if reaches() == nil {
				return fmt.Errorf("pod suspect still reaches %s", probe)
			}
			return nil
		})
		notes, err := cases.Notes(ctx, phantom.Query{Filters: map[string]any{"container": caseID}})
		if err != nil {
			t.Fatal(err)
		}
		var audit []string
		for _, n := range notes.Data {
			if strings.Contains(n.Content, "a playbook isolates") {
				audit = append(audit, n.Title)
			}
		}
		if !mentions(audit, "isolate") {
			t.Errorf("case %d has no note of the responder's isolation (notes with its reason: %q)", caseID, audit)
		}
		out, progress, err := e.run(t, ctx, "uninstall", "-n", ns)
		if err != nil || !strings.Contains(out, "Still isolated") || !strings.Contains(out, victims+"/suspect") {
			t.Fatalf("uninstall (%v) does not say suspect stays isolated:\n%s\n%s", err, out, progress)
		}
		if _, err := kube.NetworkingV1().NetworkPolicies(victims).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{}); err != nil {
			t.Errorf("the isolation policy after uninstall: %v", err)
		}
		if _, code, progress := respondCLI(t, "release", "--pod", "suspect", "-n", victims, "--no-note"); code != 0 {
			t.Fatalf("release after uninstall: exit %d\n%s", code, progress)
		}
		// The responder is gone with the uninstall: the pod must reach
		// another pod again, as before its isolation.
		witness := sleeperPod("witness", map[string]string{"app": "witness"}, httpdScript("up"))
		witnessIP := runPods(t, ctx, kube, victims, time.Minute, witness)["witness"]
		waitFor(t, time.Minute, "the released pod to reach pod witness", func() error {
			_, err := e.kubectl(ctx, "-n", victims, "exec", "suspect", "--", "timeout", "4", "nc", "-w", "3", witnessIP, "8080")
			return err
		})
	})
}

// mentions tells whether a note title of list names the action (titles
// read "falco-phantom isolate NS/POD: done").
func mentions(list []string, action string) bool {
	for _, s := range list {
		if strings.Contains(strings.ToLower(s), " "+action+" ") {
			return true
		}
	}
	return false
}

func secretValue(t *testing.T, ctx context.Context, e *env, ns, name, key string) string {
	t.Helper()
	s, err := e.cluster.Kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil || len(s.Data[key]) == 0 {
		t.Fatalf("Secret %s/%s key %s: %v", ns, name, key, err)
	}
	return strings.TrimSpace(string(s.Data[key]))
}

// callResponder posts an isolate request to the responder's Service from
// this machine, as a SOAR's HTTP app would, verifying its certificate
// against the CA install generated.
func callResponder(t *testing.T, ctx context.Context, e *env, ns, token, body string) (int, string) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(secretValue(t, ctx, e, ns, install.SecretResponderTLS, "ca.crt"))) {
		t.Fatal("the responder's CA is not PEM")
	}
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: install.ReleaseResponder + "." + ns + ".svc", MinVersion: tls.VersionTLS12}}}
	url := "https://" + clusterIP(t, ctx, e.cluster.Kube, ns, install.ReleaseResponder, install.ResponderPort) + "/v1/actions/isolate"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}
