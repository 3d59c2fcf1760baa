// Package respond acts on the cluster for a SOAR case: it isolates,
// releases, labels, annotates, terminates, cordons and describes the pod an
// alert names, only where a Policy allows, and leaves an audit record of
// every request, done or refused. The responder service and the plugin's
// respond command both call it.
package respond

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"k8s.io/client-go/kubernetes"
)

// Action is what a request asks for.
type Action string

// The actions.
const (
	// Isolate cuts the pod off the network and keeps it running.
	Isolate Action = "isolate"
	// Release undoes Isolate.
	Release Action = "release"
	// Label sets or removes labels of the pod.
	Label Action = "label"
	// Annotate sets or removes annotations of the pod.
	Annotate Action = "annotate"
	// Terminate deletes the pod.
	Terminate Action = "terminate"
	// Cordon marks the pod's node unschedulable, optionally with a taint.
	Cordon Action = "cordon"
	// Uncordon undoes Cordon.
	Uncordon Action = "uncordon"
	// Describe reads what the pod is; it changes nothing.
	Describe Action = "describe"
)

// Actions lists every action.
func Actions() []Action {
	return []Action{Isolate, Release, Label, Annotate, Terminate, Cordon, Uncordon, Describe}
}

// DefaultActions are the actions allowed unless others are asked for: the
// ones that can be undone, and the read-only one.
func DefaultActions() []Action { return []Action{Isolate, Release, Label, Annotate, Describe} }

// ParseAction returns the action named s.
func ParseAction(s string) (Action, error) {
	for _, a := range Actions() {
		if string(a) == s {
			return a, nil
		}
	}
	return "", &Error{Code: UnknownAction, Message: fmt.Sprintf("unknown action %q: the actions are %s", s, joinActions(Actions()))}
}

// ParseActions parses a list of action names.
func ParseActions(names []string) ([]Action, error) {
	var out []Action
	for _, n := range names {
		a, err := ParseAction(strings.TrimSpace(n))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func joinActions(as []Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// Request is one action on one pod. Its JSON form is the body of the
// responder's POST /v1/actions/<action>.
type Request struct {
	Action Action `json:"-"`

	// The target: Namespace and Pod, or ContainerID (with or without
	// Namespace), as Falco reports it in container.id.
	Namespace   string `json:"namespace,omitempty"`
	Pod         string `json:"pod,omitempty"`
	ContainerID string `json:"container_id,omitempty"`

	// CaseID is the SOAR container the request is for; the outcome is
	// noted there. Zero for none.
	CaseID int64 `json:"case_id,omitempty"`
	// Reason says why, for the audit trail.
	Reason string `json:"reason,omitempty"`
	// RequestedBy names who asks (a playbook, an analyst), for the audit.
	RequestedBy string `json:"requested_by,omitempty"`
	// DryRun says what would be done and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`

	// Labels (label) and Annotations (annotate): "key": "value" sets,
	// "key-": "" removes.
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// GracePeriodSeconds (terminate) overrides the pod's own.
	GracePeriodSeconds *int64 `json:"grace_period_seconds,omitempty"`
	// AllowStandalone (terminate) allows deleting a pod no controller
	// owns, which will not come back.
	AllowStandalone bool `json:"allow_standalone,omitempty"`
	// Taint (cordon, uncordon) is key[=value]:Effect.
	Taint string `json:"taint,omitempty"`
}

// Target is the pod a request acted on, once resolved.
type Target struct {
	Namespace   string `json:"namespace"`
	Pod         string `json:"pod"`
	Node        string `json:"node,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
}

func (t Target) String() string {
	switch {
	case t.Pod != "":
		return t.Namespace + "/" + t.Pod
	case t.ContainerID != "":
		return "container " + t.ContainerID
	}
	return "(no target)"
}

// Result is the outcome of a request that was carried out (or would be,
// in a dry run).
type Result struct {
	RequestID string `json:"request_id"`
	Action    Action `json:"action"`
	Target    Target `json:"target"`
	CaseID    int64  `json:"case_id,omitempty"`
	// Changed is false when there was nothing to do: the action was
	// already done.
	Changed bool   `json:"changed"`
	DryRun  bool   `json:"dry_run"`
	Message string `json:"message"`
	// Warnings are things the requester should know: the action may not
	// have the effect wanted, or the note could not be written.
	Warnings   []string     `json:"warnings"`
	DurationMS int64        `json:"duration_ms"`
	Details    *Description `json:"details,omitempty"`
}

// Responder carries out requests.
type Responder struct {
	Kube   kubernetes.Interface
	Policy Policy
	// Audit receives a record of every request. Nil records nothing.
	Audit Auditor
	// Now is time.Now outside tests.
	Now func() time.Time
}

// Do carries out req for actor (who asks: the token's holder and address,
// or the kube user) and audits it, whatever the outcome. The error is an
// *Error.
func (r *Responder) Do(ctx context.Context, req Request, actor string) (*Result, error) {
	return r.DoWithID(ctx, uuid.NewString(), req, actor)
}

// DoWithID is Do with the request id chosen by the caller.
func (r *Responder) DoWithID(ctx context.Context, id string, req Request, actor string) (*Result, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	start := now()
	res := &Result{RequestID: id, Action: req.Action, CaseID: req.CaseID, DryRun: req.DryRun, Warnings: []string{}}
	err := r.do(ctx, req, res)
	res.DurationMS = now().Sub(start).Milliseconds()
	target := res.Target
	if target.Pod == "" {
		// Not resolved: what was asked for.
		target = Target{Namespace: req.Namespace, Pod: req.Pod, ContainerID: shortID(req.ContainerID)}
	}
	rec := Record{
		Time: start, RequestID: id, Actor: actor, RequestedBy: req.RequestedBy, Action: req.Action, Target: target,
		CaseID: req.CaseID, Reason: req.Reason, DryRun: req.DryRun, Duration: now().Sub(start),
	}
	switch {
	case err != nil:
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: KubernetesError, Message: err.Error(), Err: err}
		}
		err = e
		rec.Outcome, rec.Code, rec.Message = e.Code.outcome(), e.Code, e.Message
	case res.Changed:
		rec.Outcome, rec.Message = OutcomeDone, res.Message
	default:
		rec.Outcome, rec.Message = OutcomeUnchanged, res.Message
	}
	if r.Audit != nil {
		res.Warnings = append(res.Warnings, r.Audit.Record(ctx, rec)...)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (r *Responder) do(ctx context.Context, req Request, res *Result) error {
	if req.Action == "" {
		return invalid("no action")
	}
	if _, err := ParseAction(string(req.Action)); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	if !r.Policy.ActionAllowed(req.Action) {
		return &Error{Code: ActionNotAllowed, Message: fmt.Sprintf("action %s is not allowed: the allowed actions are %s", req.Action, joinActions(r.Policy.actions()))}
	}
	pod, err := r.resolve(ctx, req)
	if err != nil {
		return err
	}
	res.Target = Target{Namespace: pod.Namespace, Pod: pod.Name, Node: pod.Spec.NodeName, ContainerID: shortID(req.ContainerID)}
	a := &act{kube: r.Kube, req: req, pod: pod, res: res}
	switch req.Action {
	case Isolate:
		return a.isolate(ctx)
	case Release:
		return a.release(ctx)
	case Label:
		return a.label(ctx)
	case Annotate:
		return a.annotate(ctx)
	case Terminate:
		return a.terminate(ctx)
	case Cordon:
		return a.cordon(ctx)
	case Uncordon:
		return a.uncordon(ctx)
	case Describe:
		return a.describe(ctx)
	}
	return &Error{Code: UnknownAction, Message: "unknown action " + string(req.Action)}
}
