package hostlab

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/poll"
)

func testRunner(t *testing.T, timeout time.Duration) (*stepRunner, *bytes.Buffer) {
	t.Helper()
	l := layout{root: t.TempDir()}
	for _, d := range []string{l.logs(), l.pids()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	return &stepRunner{l: l, w: &log, timeout: timeout}, &log
}

func TestStepsRunInOrderAndSayWhatTheyWaitFor(t *testing.T) {
	t.Parallel()
	r, log := testRunner(t, time.Minute)
	var ran []string
	checks := 0
	steps := []step{
		{name: "a", doing: "starting a", start: func(context.Context) (*started, error) { ran = append(ran, "a"); return nil, nil },
			waitFor: "a to answer", ready: func(context.Context) error {
				if checks++; checks < 3 {
					return errors.New("not yet")
				}
				return nil
			}},
		{name: "b", doing: "starting b", start: func(context.Context) (*started, error) { ran = append(ran, "b"); return nil, nil }},
		{name: "c", waitFor: "c to exist", ready: func(context.Context) error { ran = append(ran, "c"); return nil }},
	}
	if err := r.run(t.Context(), steps); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ran, ","); got != "a,b,c" || checks != 3 {
		t.Errorf("ran %s with %d checks of a, want a,b,c with 3", got, checks)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	want := []string{"hostlab: starting a", "hostlab:   ok after ", ": a to answer", "hostlab: starting b", "hostlab:   ok after ", ": c to exist"}
	if len(lines) != 4 || lines[0] != want[0] || !strings.HasPrefix(lines[1], want[1]) || !strings.HasSuffix(lines[1], want[2]) ||
		lines[2] != want[3] || !strings.HasPrefix(lines[3], want[4]) || !strings.HasSuffix(lines[3], want[5]) {
		t.Errorf("progress:\n%s\nwant the start of a and b, and how long a and c were waited for", log)
	}
}

func TestFailedStepIsNamed(t *testing.T) {
	t.Parallel()
	r, _ := testRunner(t, 50*time.Millisecond)
	later := false
	boom := errors.New("boom")
	for _, tt := range []struct {
		failing step
		want    []string
		is      error
	}{
		{step{name: "images", start: func(context.Context) (*started, error) { return nil, boom }},
			[]string{"step images failed: boom"}, boom},
		{step{name: "etcd", waitFor: "etcd to be healthy", ready: func(context.Context) error { return boom }},
			[]string{"step etcd failed: waiting for etcd to be healthy: timed out after", "boom"}, poll.ErrTimeout},
	} {
		err := r.run(t.Context(), []step{tt.failing, {name: "later", start: func(context.Context) (*started, error) { later = true; return nil, nil }}})
		for _, want := range tt.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want it to contain %q", err, want)
			}
		}
		if !errors.Is(err, tt.is) {
			t.Errorf("error %v does not wrap %v", err, tt.is)
		}
	}
	if later {
		t.Error("a step after a failed one ran")
	}
}

// A daemon that exits while its step waits for it fails the step at once,
// with the end of its log, instead of after the timeout.
func TestWaitEndsWhenTheDaemonExits(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run as a daemon")
	}
	r, _ := testRunner(t, time.Hour)
	begin := time.Now()
	err = r.run(t.Context(), []step{{
		name: "crasher",
		start: func(context.Context) (*started, error) {
			return start(r.l, daemon{name: "crasher", path: sh, args: []string{"-c", "echo cannot bind; exit 3"}})
		},
		waitFor: "crasher to answer",
		ready:   func(context.Context) error { return errors.New("connection refused") },
	}})
	if err == nil || !strings.Contains(err.Error(), "step crasher failed: crasher exited (exit status 3) while waiting for crasher to answer") ||
		!strings.Contains(err.Error(), "cannot bind") {
		t.Errorf("error %v, want the step, the exit and the end of the log", err)
	}
	if took := time.Since(begin); took > time.Minute {
		t.Errorf("the wait took %s, want it to end when the daemon exited", took)
	}
}

// Up starts every daemon of the lab once, in the order the control plane
// needs, and waits for the node and the default ServiceAccount.
func TestUpSteps(t *testing.T) {
	t.Parallel()
	s := testSettings(t)
	u := &upper{l: s.layout(), s: s, ds: daemons(s.layout(), s, "/helper")}
	var names, started []string
	waits := map[string]string{}
	for _, st := range u.steps([]string{"a.tar"}) {
		names = append(names, st.name)
		if _, ok := u.ds[st.name]; ok {
			started = append(started, st.name)
		}
		if st.ready != nil {
			waits[st.name] = st.waitFor
		}
	}
	want := "etcd,kube-apiserver,kube-controller-manager,kube-scheduler,containerd,images,coredns,kubelet,kube-proxy,kube-router,StorageClass,provisioner,ServiceAccount"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("steps %s, want %s", got, want)
	}
	if len(started) != len(u.ds) {
		t.Errorf("steps start %v, want every daemon of %d once", started, len(u.ds))
	}
	if waits["kubelet"] != "node node-a to be Ready" || waits["ServiceAccount"] == "" || waits["kube-router"] == "" || len(waits) != 8 {
		t.Errorf("waits = %v, want 8 (etcd, API server, containerd, CoreDNS, kubelet, kube-proxy, kube-router, ServiceAccount)", waits)
	}
}
