package playbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Status is the state of an action run.
type Status string

// The states of an action run, as SOAR names them.
const (
	// StatusRunning: sent, no outcome yet.
	StatusRunning Status = "running"
	// StatusSuccess: the responder did the action, or found it done.
	StatusSuccess Status = "success"
	// StatusFailed: refused, failed, or the responder was not reached.
	StatusFailed Status = "failed"
)

// Case is what playbooks see of a new case: the container and the target
// named by its first artifact.
type Case struct {
	// ID is the container's id.
	ID int64
	// Name, Label and Severity are the container's.
	Name, Label, Severity string
	// Rule is the Falco rule of the first artifact; "" when it names none,
	// and then the container's name stands for it.
	Rule string
	// Namespace, Pod and ContainerID are the target, as the first artifact
	// names it; any may be "".
	Namespace, Pod, ContainerID string
}

// FalcoRule is the rule a playbook matches against.
func (c Case) FalcoRule() string {
	if c.Rule != "" {
		return c.Rule
	}
	return c.Name
}

// target describes the case's target for the name of a run.
func (c Case) target() string {
	switch {
	case c.Pod != "" && c.Namespace != "":
		return c.Namespace + "/" + c.Pod
	case c.Pod != "":
		return "pod " + c.Pod
	case c.ContainerID != "":
		return "container " + c.ContainerID
	}
	return "(no target)"
}

// RunStart is a run about to start.
type RunStart struct {
	CaseID   int64
	Playbook string
	Action   Action
	// Name describes the run: the action and its target.
	Name string
}

// Result is the outcome of a run.
type Result struct {
	Status  Status
	Message string
	// Answer is the responder's last answer (JSON; a string when it was
	// not JSON), or nil when it never answered.
	Answer json.RawMessage
}

// Recorder keeps the action runs.
type Recorder interface {
	// StartRun records r as running and returns its id; started is false
	// when the playbook already has a run on that case, which is then
	// not run again.
	StartRun(ctx context.Context, r RunStart) (id int64, started bool, err error)
	// FinishRun records the outcome of run id.
	FinishRun(ctx context.Context, id int64, res Result) error
}

// Retry says how calls to the responder are repeated after a transient
// failure (no connection, a timeout, 5xx, 429).
type Retry struct {
	// Attempts is the number of calls at most, the first included.
	Attempts int
	// Backoff is the wait after the first failure, doubled after each.
	Backoff time.Duration
	// MaxWait is the longest Retry-After honoured; a responder asking for
	// more is not called again.
	MaxWait time.Duration
	// Timeout bounds one call.
	Timeout time.Duration
}

// DefaultRetry is four attempts, 250 ms apart then doubling (1.75 s of
// waits in all), a Retry-After of up to 30 s, 10 s per call.
func DefaultRetry() Retry {
	return Retry{Attempts: 4, Backoff: 250 * time.Millisecond, MaxWait: 30 * time.Second, Timeout: 10 * time.Second}
}

// Engine runs playbooks on cases.
type Engine struct {
	set *Set
	rec Recorder
	log *slog.Logger
	// Retry is how calls are repeated; NewEngine sets DefaultRetry.
	Retry Retry
}

// NewEngine returns an engine running set's playbooks and recording their
// runs with rec; log may be nil.
func NewEngine(set *Set, rec Recorder, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{set: set, rec: rec, log: log, Retry: DefaultRetry()}
}

// Matching lists the playbooks that match c, in file order.
func (e *Engine) Matching(c Case) []string {
	var out []string
	for _, p := range e.set.playbooks {
		if p.matches(c) {
			out = append(out, p.Name)
		}
	}
	return out
}

func (p *playbook) matches(c Case) bool {
	m := p.Match
	return (len(m.Rule) == 0 || slices.Contains(m.Rule, c.FalcoRule())) &&
		(len(m.Severity) == 0 || slices.Contains(m.Severity, c.Severity)) &&
		(len(m.Label) == 0 || slices.Contains(m.Label, c.Label))
}

// Run runs, one after another in file order, every playbook that matches
// c and has not run on it yet, and waits for them. What the responder
// answers is recorded, not returned: the error says only what could not
// be recorded.
func (e *Engine) Run(ctx context.Context, c Case) error {
	var errs []error
	for _, p := range e.set.playbooks {
		if p.matches(c) {
			errs = append(errs, e.runOne(ctx, p, c))
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) runOne(ctx context.Context, p *playbook, c Case) error {
	start := RunStart{CaseID: c.ID, Playbook: p.Name, Action: p.Action, Name: string(p.Action) + " " + c.target()}
	id, started, err := e.rec.StartRun(ctx, start)
	if err != nil {
		return fmt.Errorf("failed to record playbook %q starting on case %d: %w", p.Name, c.ID, err)
	}
	if !started {
		e.log.DebugContext(ctx, "playbook already ran on this case", "playbook", p.Name, "case_id", c.ID)
		return nil
	}
	res := e.act(ctx, p, c)
	level := slog.LevelInfo
	if res.Status != StatusSuccess {
		level = slog.LevelWarn
	}
	e.log.Log(ctx, level, "playbook ran", "playbook", p.Name, "case_id", c.ID, "action", string(p.Action),
		"target", c.target(), "status", string(res.Status), "message", res.Message)
	// The outcome is recorded even when ctx ended (a shutdown), so that
	// the run does not stay "running".
	if err := e.rec.FinishRun(context.WithoutCancel(ctx), id, res); err != nil {
		return fmt.Errorf("failed to record the outcome of playbook %q on case %d: %w", p.Name, c.ID, err)
	}
	return nil
}

// request is the body of POST /v1/actions/<action>.
type request struct {
	Namespace          string            `json:"namespace,omitempty"`
	Pod                string            `json:"pod,omitempty"`
	ContainerID        string            `json:"container_id,omitempty"`
	CaseID             int64             `json:"case_id"`
	Reason             string            `json:"reason,omitempty"`
	RequestedBy        string            `json:"requested_by"`
	DryRun             *bool             `json:"dry_run,omitempty"`
	Labels             map[string]string `json:"labels,omitempty"`
	Annotations        map[string]string `json:"annotations,omitempty"`
	GracePeriodSeconds *int64            `json:"grace_period_seconds,omitempty"`
	AllowStandalone    *bool             `json:"allow_standalone,omitempty"`
	Taint              string            `json:"taint,omitempty"`
}

// act asks the responder to do p's action on c's target.
func (e *Engine) act(ctx context.Context, p *playbook, c Case) Result {
	if c.Pod == "" && c.ContainerID == "" {
		return Result{Status: StatusFailed, Message: "not sent: the case's first artifact names no pod " +
			"(cef kubernetesPodName) and no container (cef containerId)"}
	}
	body, err := json.Marshal(request{
		Namespace: c.Namespace, Pod: c.Pod, ContainerID: c.ContainerID,
		CaseID: c.ID, Reason: c.FalcoRule(), RequestedBy: "mockphantom playbook " + p.Name,
		DryRun: p.Params.DryRun, Labels: p.Params.Labels, Annotations: p.Params.Annotations,
		GracePeriodSeconds: p.Params.GracePeriodSeconds, AllowStandalone: p.Params.AllowStandalone,
		Taint: p.Params.Taint,
	})
	if err != nil {
		return Result{Status: StatusFailed, Message: fmt.Sprintf("not sent: failed to encode the request: %v", err)}
	}
	return e.call(ctx, p, body)
}
