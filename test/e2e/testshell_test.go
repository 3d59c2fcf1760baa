//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/shelltest"
)

// TestTestShellOnARealCluster runs test-shell against a real pipeline on
// the lab, installed with the upstream charts: a real exec with a TTY into
// a real pod, Falco's detection of it, falcosidekick, NATS, the forwarder
// and the mock SOAR. Falco is the real one where the upstream folder holds
// it; elsewhere the Falco stand-in (test/standin/falco) runs in the Falco
// chart's DaemonSet and posts the alert Falco would, from the API
// server's audit log (the suite's log says which ran). Also: --pod on an
// existing pod, the clean-up of the pod test-shell creates, the timeout
// path (Falco stopped) and SOAR unreachable, with their exit codes.
func TestTestShellOnARealCluster(t *testing.T) {
	e := needLab(t)
	ctx := t.Context()
	kube := e.cluster.Kube
	const ns = "fp-shell"
	t.Cleanup(func() {
		_, _, _ = e.run(t, context.WithoutCancel(ctx), "uninstall", "-n", ns)
	})
	dumpOnFailure(t, kube, ns)
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	shell := func(t *testing.T, args ...string) (*shelltest.Result, int) {
		t.Helper()
		args = append([]string{"test-shell", "-n", ns, "--install-namespace", ns, "--image", images.ShellRef, "-o", "json"}, args...)
		out, progress, err := e.run(t, ctx, args...)
		var res shelltest.Result
		if jerr := json.Unmarshal([]byte(out), &res); jerr != nil {
			t.Fatalf("test-shell printed no result (%v): %v\n%s\n%s", err, jerr, out, progress)
		}
		t.Logf("test-shell: %s (%s)\nprogress:\n%s", res.Outcome, res.Error, progress)
		return &res, cmdmain.ExitCode(err)
	}
	falcoName := "the real Falco " + images.FalcoVersion
	if !e.realFalco() {
		falcoName = "the Falco STAND-IN (test/standin/falco; it reads the audit log, it is not Falco)"
	}
	t.Logf("the shell is detected by %s", falcoName)

	step("install", func(t *testing.T) {
		args := append([]string{"install", "-n", ns, "--mock-phantom"}, e.chartArgs...)
		_, progress, err := e.run(t, ctx, append(args, "--image-tag", imageTag, "--timeout", "3m")...)
		if err != nil {
			t.Fatalf("install: %v\n%s", err, progress)
		}
	})

	step("a shell in a pod test-shell creates becomes a case", func(t *testing.T) {
		res, code := shell(t, "--timeout", "90s")
		if code != 0 || res.Outcome != shelltest.Passed {
			t.Fatalf("exit %d, outcome %s: %s\n%v", code, res.Outcome, res.Error, res.Diagnosis)
		}
		if !res.CreatedPod || res.CaseID == 0 || res.ArtifactID == 0 || res.CaseName != "Terminal shell in container" ||
			res.Latency <= 0 || !strings.HasPrefix(res.Marker, "falco-phantom-test-") || res.ContainerID == "" {
			t.Errorf("result = %+v", res)
		}
		checkDetection(t, ctx, e, ns, res)
		// The pod it created is gone.
		waitFor(t, time.Minute, "the test pod "+res.Pod+" to be deleted", func() error {
			pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=falco-phantom-test-shell"})
			if err != nil {
				return err
			}
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil {
					return errorf("pod %s still exists", p.Name)
				}
			}
			return nil
		})
	})

	step("--pod opens the shell in an existing pod and leaves it", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "existing-web", Namespace: ns},
			Spec: corev1.PodSpec{
				Containers:                    []corev1.Container{{Name: "web", Image: images.ShellRef, ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"}}},
				TerminationGracePeriodSeconds: new(int64),
			},
		}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		res, code := shell(t, "--pod", "existing-web", "-c", "web", "--timeout", "90s")
		if code != 0 || res.Outcome != shelltest.Passed || res.Pod != "existing-web" || res.Container != "web" || res.CreatedPod {
			t.Fatalf("exit %d, result %+v", code, res)
		}
		if p, err := kube.CoreV1().Pods(ns).Get(ctx, "existing-web", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
			t.Errorf("test-shell touched the pod it was given: %v", err)
		}
		checkDetection(t, ctx, e, ns, res)
	})

	step("without Falco's alert it times out with exit code 2 and says where to look", func(t *testing.T) {
		// Falco stops: its DaemonSet is kept off every node.
		patch := []byte(`{"spec":{"template":{"spec":{"nodeSelector":{"falco-phantom-e2e/no-such-node":"true"}}}}}`)
		if _, err := kube.AppsV1().DaemonSets(ns).Patch(ctx, "falco", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Minute, "Falco's pod to be gone", func() error {
			pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=falco,app.kubernetes.io/name=falco"})
			if err != nil || len(pods.Items) > 0 {
				return errorf("%d pods left (%v)", len(pods.Items), err)
			}
			return nil
		})
		res, code := shell(t, "--pod", "existing-web", "--timeout", "8s")
		if code != 2 || res.Outcome != shelltest.NoEvent {
			t.Fatalf("exit %d, outcome %s, want 2 and %s", code, res.Outcome, shelltest.NoEvent)
		}
		diag := strings.Join(res.Diagnosis, "\n")
		for _, want := range []string{"Falco: no pod", "falcosidekick: 2/2 pods ready", "forwarder: received no alert since the shell opened"} {
			if !strings.Contains(diag, want) {
				t.Errorf("diagnosis lacks %q:\n%s", want, diag)
			}
		}
	})

	step("with SOAR unreachable it exits 4 before opening a shell", func(t *testing.T) {
		scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: install.ReleaseMock, Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 0}}
		if _, err := kube.AppsV1().Deployments(ns).UpdateScale(ctx, install.ReleaseMock, scale, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the mock SOAR's pods to be gone", func() error {
			pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=mockphantom"})
			if err != nil || len(pods.Items) > 0 {
				return errorf("%d pods left (%v)", len(pods.Items), err)
			}
			return nil
		})
		res, code := shell(t, "--timeout", "10s")
		if code != 4 || res.Outcome != shelltest.SOARUnreachable || res.Pod != "" {
			t.Fatalf("exit %d, result %+v; want 4, soar-unreachable and no pod", code, res)
		}
	})
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// checkDetection checks that the case test-shell found came from the
// Falco container's own alert about the shell: Falco (or the stand-in)
// logged the alert with the marker, and the artifact names the container
// by the id Falco reads from the cgroup. The real Falco 0.40 with rules
// 3.2.0 sends no k8s.* fields for this rule: test-shell found the pod by
// that id. The stand-in names the pod, as newer Falcos do.
func checkDetection(t *testing.T, ctx context.Context, e *env, ns string, res *shelltest.Result) {
	t.Helper()
	kube := e.cluster.Kube
	art, err := mockSOAR(t, ctx, kube, ns).Artifact(ctx, res.ArtifactID)
	if err != nil {
		t.Fatalf("artifact %d: %v", res.ArtifactID, err)
	}
	if cmd := fmt.Sprint(art.CEF["commandLine"]); !strings.Contains(cmd, res.Marker) {
		t.Errorf("artifact commandLine %q lacks the marker %s", cmd, res.Marker)
	}
	if id := fmt.Sprint(art.CEF["containerId"]); len(id) != 12 || !strings.HasPrefix(res.ContainerID, id) {
		t.Errorf("artifact containerId %q, want the first 12 characters of %s", id, res.ContainerID)
	}
	pod, hasPod := art.CEF["kubernetesPodName"]
	switch {
	case e.realFalco() && hasPod:
		t.Logf("Falco %s sent the pod's name (%v): newer than the rules this lab was checked with", images.FalcoVersion, pod)
	case !e.realFalco() && fmt.Sprint(pod) != res.Pod:
		t.Errorf("the stand-in's artifact names pod %v, want %s", pod, res.Pod)
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=falco,app.kubernetes.io/name=falco"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("the Falco pod: %d pods (%v)", len(pods.Items), err)
	}
	logs, err := kube.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{Container: "falco"}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, res.Marker) {
			t.Logf("the Falco container's log: %s", line)
			return
		}
	}
	t.Errorf("the Falco container's log has no line with the marker %s:\n%s", res.Marker, logs)
}
