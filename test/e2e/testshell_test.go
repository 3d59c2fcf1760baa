//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/shelltest"
	falcostandin "github.com/falco-phantom/kubectl-falco-phantom/test/standin/falco"
)

// TestTestShellOnARealCluster runs test-shell against a real pipeline on
// the lab: a real exec with a TTY into a real pod, then NATS, the forwarder
// and the mock SOAR. Falco cannot run here, so its detection is stood in
// for by falcostandin: it follows the API server's audit log and, for an
// exec of a shell with a terminal, posts the alert Falco would emit to the
// falcosidekick stand-in, as Falco's HTTP output does. Also: --pod on an
// existing pod, the clean-up of the pod test-shell creates, the timeout
// path (stand-in off) and SOAR unreachable, with their exit codes.
func TestTestShellOnARealCluster(t *testing.T) {
	e := needLab(t)
	if e.cluster.AuditLog == "" {
		t.Fatal("the lab runs without an audit log: the Falco stand-in has nothing to follow")
	}
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

	step("install", func(t *testing.T) {
		_, progress, err := e.run(t, ctx, "install", "-n", ns, "--mock-phantom", "--nats-chart", e.natsChart,
			"--falco-chart", e.falcoChart, "--image-tag", imageTag, "--timeout", "3m")
		if err != nil {
			t.Fatalf("install: %v\n%s", err, progress)
		}
	})

	standinCtx, stopStandin := context.WithCancel(ctx)
	standinDone := make(chan error, 1)
	go func() {
		w := &falcostandin.Watcher{
			LogPath: e.cluster.AuditLog, Kube: kube, Hostname: e.cluster.NodeName,
			SidekickURL: "http://" + clusterIP(t, ctx, kube, ns, "falco-falcosidekick", 2801) + "/",
			Log:         slog.New(slog.NewTextHandler(os.Stderr, nil)),
		}
		standinDone <- w.Run(standinCtx)
	}()
	var stopOnce sync.Once
	stopFalco := func() { stopOnce.Do(func() { stopStandin(); <-standinDone }) }
	defer stopFalco()

	step("a shell in a pod test-shell creates becomes a case", func(t *testing.T) {
		res, code := shell(t, "--timeout", "90s")
		if code != 0 || res.Outcome != shelltest.Passed {
			t.Fatalf("exit %d, outcome %s: %s\n%v", code, res.Outcome, res.Error, res.Diagnosis)
		}
		if !res.CreatedPod || res.CaseID == 0 || res.ArtifactID == 0 || res.CaseName != "Terminal shell in container" ||
			res.Latency <= 0 || !strings.HasPrefix(res.Marker, "falco-phantom-test-") || res.ContainerID == "" {
			t.Errorf("result = %+v", res)
		}
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
	})

	step("without Falco's alert it times out with exit code 2 and says where to look", func(t *testing.T) {
		stopFalco()
		res, code := shell(t, "--pod", "existing-web", "--timeout", "8s")
		if code != 2 || res.Outcome != shelltest.NoEvent {
			t.Fatalf("exit %d, outcome %s, want 2 and %s", code, res.Outcome, shelltest.NoEvent)
		}
		diag := strings.Join(res.Diagnosis, "\n")
		for _, want := range []string{"Falco:", "falcosidekick:", "forwarder: received no alert since the shell opened"} {
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
