// Package shelltest proves the pipeline end to end the way an attacker
// would trip it: it opens a shell with a terminal in a container (which
// makes Falco raise "Terminal shell in container"), then waits until SOAR
// holds a case with an artifact carrying that shell's unique marker.
package shelltest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// Outcome is how a test ended; each has its own exit code.
type Outcome string

const (
	// Passed: the alert of the shell is a case in SOAR.
	Passed Outcome = "passed"
	// NoEvent: the shell ran but no matching alert reached SOAR in time.
	NoEvent Outcome = "no-event-in-soar"
	// ExecFailed: the shell could not be opened.
	ExecFailed Outcome = "exec-failed"
	// SOARUnreachable: SOAR could not be asked.
	SOARUnreachable Outcome = "soar-unreachable"
)

// ExitCode is the process exit code of an outcome.
func (o Outcome) ExitCode() int {
	switch o {
	case Passed:
		return 0
	case NoEvent:
		return 2
	case ExecFailed:
		return 3
	case SOARUnreachable:
		return 4
	case NotIsolated:
		return 6
	}
	return 1
}

// Options configure a test.
type Options struct {
	// Namespace of the target pod (and of the pod created when Pod is empty).
	Namespace string
	// Pod and Container name an existing target; empty Pod creates a
	// short-lived pod and deletes it afterwards.
	Pod, Container string
	// Image of the created pod; it needs /bin/sh.
	Image string
	// KeepPod keeps the created pod.
	KeepPod bool
	// Timeout bounds the wait for the case in SOAR.
	Timeout time.Duration
	// Interactive keeps the shell open on In/Out until the user exits it.
	Interactive bool
	In          io.Reader
	Out         io.Writer
	// SOAR is how to read SOAR.
	SOAR *SOAR
	// InstallNamespace is where install put the pipeline, for diagnosis.
	InstallNamespace string
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
	// Respond, when set, proves the response too (see RespondCheck).
	Respond *RespondCheck
}

// Result is the timeline of one test.
type Result struct {
	Outcome     Outcome   `json:"outcome"`
	Marker      string    `json:"marker"`
	Namespace   string    `json:"namespace"`
	Pod         string    `json:"pod"`
	Container   string    `json:"container"`
	ContainerID string    `json:"containerID"`
	CreatedPod  bool      `json:"createdPod"`
	ShellOpened time.Time `json:"shellOpened"`
	// FalcoEvent is the time of the alert (Falco's clock).
	FalcoEvent *time.Time `json:"falcoEvent,omitempty"`
	// Stored is when SOAR stored the artifact (SOAR's clock).
	Stored *time.Time `json:"stored,omitempty"`
	// Found is when this command saw it in SOAR.
	Found      *time.Time    `json:"found,omitempty"`
	CaseID     int64         `json:"caseID,omitempty"`
	ArtifactID int64         `json:"artifactID,omitempty"`
	CaseName   string        `json:"caseName,omitempty"`
	Latency    time.Duration `json:"latencyNanoseconds,omitempty"`
	SOARURL    string        `json:"soarURL"`
	// Error says what went wrong; Diagnosis what was found on the way.
	Error     string   `json:"error,omitempty"`
	Diagnosis []string `json:"diagnosis,omitempty"`
	// Response is the response check's timeline, with Options.Respond.
	Response *ResponseTimeline `json:"response,omitempty"`
}

// Tester runs tests against one cluster.
type Tester struct {
	Kube   kubernetes.Interface
	Config *rest.Config
}

// Run opens the shell, waits for its alert in SOAR and returns the
// timeline. An error is returned only for problems before the test could
// start (bad options); failures of the test itself are in the Result.
func (t *Tester) Run(ctx context.Context, o Options) (*Result, error) {
	if o.SOAR == nil {
		return nil, errors.New("no SOAR to check")
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Respond != nil && o.Pod != "" {
		// The playbook runs on new cases; an existing pod's alert may
		// join a case it already has.
		return nil, errors.New("--respond creates its own pod: drop --pod")
	}
	p := progress{w: o.Progress}
	res := &Result{Marker: newMarker(), Namespace: o.Namespace, SOARURL: o.SOAR.URL}

	// SOAR must answer before anything happens in the cluster.
	if err := o.SOAR.Check(ctx); err != nil {
		return t.fail(ctx, res, o, SOARUnreachable, err), nil
	}
	p.step("SOAR %s answers", o.SOAR.URL)

	target, cleanup, err := t.target(ctx, o, p)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return t.fail(ctx, res, o, ExecFailed, err), nil
	}
	res.Pod, res.Container, res.ContainerID, res.CreatedPod = target.pod, target.container, target.containerID, o.Pod == ""
	addr := ""
	if o.Respond != nil {
		res.Response = &ResponseTimeline{Action: string(respond.Isolate)}
		if addr, err = t.probeAddr(ctx, o.Respond); err != nil {
			return t.fail(ctx, res, o, NotIsolated, err), nil
		}
		res.Response.Probe = addr
		ok, err := t.connects(ctx, o.Namespace, target, addr)
		if err == nil && !ok {
			err = fmt.Errorf("the pod cannot reach %s even before the shell: the check needs a connection that works first", addr)
		}
		if err != nil {
			return t.fail(ctx, res, o, NotIsolated, err), nil
		}
		p.step("pod %s reaches %s (Service %s/%s)", target.pod, addr, o.Respond.ProbeNamespace, o.Respond.ProbeService)
	}

	before := t.forwarderReceived(ctx, o)
	p.step("opening a shell with a terminal in %s/%s (container %s), marker %s", o.Namespace, target.pod, target.container, res.Marker)
	res.ShellOpened = time.Now().UTC()
	if err := t.shell(ctx, o, target, res.Marker); err != nil {
		return t.fail(ctx, res, o, ExecFailed, err), nil
	}
	p.step("shell ran; waiting for its alert in SOAR (up to %s)", o.Timeout)

	match, err := o.SOAR.waitFor(ctx, res.Marker, target, res.ShellOpened, o.Timeout, p)
	switch {
	case errors.Is(err, errUnreachable):
		return t.fail(ctx, res, o, SOARUnreachable, err), nil
	case err != nil:
		res.Diagnosis = append(res.Diagnosis, t.forwarderDelta(ctx, o, before)...)
		return t.fail(ctx, res, o, NoEvent, err), nil
	}
	found := time.Now().UTC()
	res.Outcome, res.Found = Passed, &found
	res.CaseID, res.ArtifactID, res.CaseName = match.caseID, match.artifactID, match.caseName
	res.FalcoEvent, res.Stored = match.eventTime, match.stored
	res.Latency = found.Sub(res.ShellOpened)
	if o.Respond != nil {
		if err := t.checkResponse(ctx, o, target, addr, res, p); err != nil {
			if res.Response.Isolated != nil && res.Response.Released == nil && !o.Respond.KeepIsolated {
				_ = t.release(ctx, o, target, res)
			}
			return t.fail(ctx, res, o, NotIsolated, err), nil
		}
	}
	return res, nil
}

// fail records a failure and what the hops on the way show.
func (t *Tester) fail(ctx context.Context, res *Result, o Options, outcome Outcome, err error) *Result {
	res.Outcome, res.Error = outcome, err.Error()
	res.Diagnosis = append(res.Diagnosis, t.diagnose(ctx, o, outcome)...)
	return res
}

// newMarker is a unique word for the shell's command line.
func newMarker() string {
	return "falco-phantom-test-" + strings.ToLower(rand.Text()[:12])
}

type progress struct{ w io.Writer }

func (p progress) step(format string, args ...any) {
	if p.w != nil {
		fmt.Fprintf(p.w, "• "+format+"\n", args...)
	}
}

// SOARClient builds the client used to read SOAR.
func SOARClient(url string, auth phantom.Auth, insecure bool, caPEM []byte) (*phantom.Client, error) {
	return phantom.New(phantom.Config{BaseURL: url, Credentials: phantom.StaticCredentials(auth), InsecureSkipVerify: insecure, CAPEM: caPEM, Timeout: 15 * time.Second})
}
