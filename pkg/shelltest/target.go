package shelltest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/moby/term"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// target is the container the shell opens in.
type target struct {
	pod, container, containerID, node string
}

// podLabel marks the pods this command creates.
const podLabel = "falco-phantom-test-shell"

// target finds the pod given, or creates a short-lived one, and waits
// until its container runs. cleanup (which may be set even on error)
// deletes a created pod.
func (t *Tester) target(ctx context.Context, o Options, p progress) (target, func(), error) {
	pods := t.Kube.CoreV1().Pods(o.Namespace)
	name := o.Pod
	var cleanup func()
	if name == "" {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: "falco-phantom-shell-" + strings.ToLower(rand.Text()[:6]), Namespace: o.Namespace,
				Labels: map[string]string{"app.kubernetes.io/name": podLabel, "app.kubernetes.io/managed-by": "kubectl-falco-phantom"},
			},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{
					Name: "shell", Image: o.Image, ImagePullPolicy: corev1.PullIfNotPresent,
					// The main process is not a shell: only the exec'd shell
					// with a terminal is the alert.
					Command: []string{"sleep", "3600"},
				}},
				RestartPolicy:                 corev1.RestartPolicyNever,
				AutomountServiceAccountToken:  new(bool),
				TerminationGracePeriodSeconds: new(int64),
				// Gone within the hour even if this command is killed.
				ActiveDeadlineSeconds: ptr(int64(3600)),
			},
		}
		created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			return target{}, nil, fmt.Errorf("create test pod in namespace %s: %w", o.Namespace, err)
		}
		name = created.Name
		p.step("created pod %s/%s (image %s)", o.Namespace, name, o.Image)
		if !o.KeepPod {
			cleanup = func() {
				delCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				zero := int64(0)
				if err := pods.Delete(delCtx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err == nil {
					p.step("deleted pod %s/%s", o.Namespace, name)
				}
			}
		}
	}
	tg, err := t.waitRunning(ctx, o, name, p)
	return tg, cleanup, err
}

func (t *Tester) waitRunning(ctx context.Context, o Options, name string, p progress) (target, error) {
	deadline := time.Now().Add(2 * time.Minute)
	last := ""
	for {
		pod, err := t.Kube.CoreV1().Pods(o.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return target{}, fmt.Errorf("pod %s/%s: %w", o.Namespace, name, err)
		}
		container := o.Container
		if container == "" {
			container = pod.Spec.Containers[0].Name
		}
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.Name == container && cs.State.Running != nil {
				_, id, _ := strings.Cut(cs.ContainerID, "://")
				return target{pod: name, container: container, containerID: id, node: pod.Spec.NodeName}, nil
			}
		}
		if !hasContainer(pod, container) {
			return target{}, fmt.Errorf("pod %s/%s has no container %q", o.Namespace, name, container)
		}
		state := waitingReason(pod, container)
		if state != last {
			p.step("waiting for pod %s to run: %s", name, state)
			last = state
		}
		if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
			return target{}, fmt.Errorf("pod %s/%s is %s: %s", o.Namespace, name, pod.Status.Phase, state)
		}
		if time.Now().After(deadline) {
			return target{}, fmt.Errorf("pod %s/%s not running after 2m: %s", o.Namespace, name, state)
		}
		select {
		case <-ctx.Done():
			return target{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	return false
}

func waitingReason(pod *corev1.Pod, container string) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return "not scheduled: " + c.Message
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == container && cs.State.Waiting != nil {
			return strings.TrimSpace(cs.State.Waiting.Reason + " " + cs.State.Waiting.Message)
		}
	}
	return string(pod.Status.Phase)
}

// shell runs a shell with a terminal in the target. The process is
// /bin/sh itself (Falco's rule matches shell names; "busybox sh" would not
// fire it) and its command line carries the marker.
func (t *Tester) shell(ctx context.Context, o Options, tg target, marker string) error {
	script := "echo " + marker + "; sleep 1"
	if o.Interactive {
		script = "echo " + marker + "; exec /bin/sh"
	}
	req := t.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(o.Namespace).Name(tg.pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: tg.container, Command: []string{"/bin/sh", "-c", script},
			Stdin: o.Interactive, Stdout: true, TTY: true,
		}, scheme.ParameterCodec)
	exec, err := executor(t, req.URL().String())
	if err != nil {
		return err
	}
	var out bytes.Buffer
	opts := remotecommand.StreamOptions{Stdout: &out, Tty: true}
	if o.Interactive {
		restore, size, err := rawTerminal(o.In)
		if err != nil {
			return err
		}
		defer restore()
		opts.Stdin, opts.Stdout, opts.TerminalSizeQueue = o.In, io.MultiWriter(o.Out, &out), size
	}
	if err := exec.StreamWithContext(ctx, opts); err != nil {
		return fmt.Errorf("exec in %s/%s (container %s): %w", o.Namespace, tg.pod, tg.container, err)
	}
	if !strings.Contains(out.String(), marker) {
		return fmt.Errorf("the shell in %s/%s did not run the command (output %q); does the image have /bin/sh?", o.Namespace, tg.pod, truncate(out.String(), 200))
	}
	return nil
}

// executor execs like kubectl: WebSocket first, SPDY when the server
// cannot upgrade to WebSocket.
func executor(t *Tester, url string) (remotecommand.Executor, error) {
	ws, err := remotecommand.NewWebSocketExecutor(t.Config, http.MethodGet, url)
	if err != nil {
		return nil, fmt.Errorf("exec over WebSocket: %w", err)
	}
	u, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(t.Config, http.MethodPost, u)
	if err != nil {
		return nil, fmt.Errorf("exec over SPDY: %w", err)
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}

// rawTerminal puts in (a terminal) into raw mode for an interactive shell.
func rawTerminal(in io.Reader) (restore func(), size remotecommand.TerminalSizeQueue, err error) {
	fd, isTerm := term.GetFdInfo(in)
	if !isTerm {
		return func() {}, nil, errors.New("--interactive needs a terminal on standard input")
	}
	state, err := term.SetRawTerminal(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("terminal: %w", err)
	}
	q := &sizeOnce{}
	if ws, err := term.GetWinsize(fd); err == nil {
		q.size = &remotecommand.TerminalSize{Width: ws.Width, Height: ws.Height}
	}
	return func() { _ = term.RestoreTerminal(fd, state) }, q, nil
}

// sizeOnce reports the terminal's size once.
type sizeOnce struct{ size *remotecommand.TerminalSize }

func (s *sizeOnce) Next() *remotecommand.TerminalSize {
	size := s.size
	s.size = nil
	return size
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func ptr[T any](v T) *T { return &v }
