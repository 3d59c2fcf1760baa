package respond

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// Outcome is how a request ended, for the audit trail.
type Outcome string

// The outcomes.
const (
	// OutcomeDone: the action changed the cluster (or would, in a dry run).
	OutcomeDone Outcome = "done"
	// OutcomeUnchanged: the action was already done.
	OutcomeUnchanged Outcome = "unchanged"
	// OutcomeRefused: the request was not allowed or not valid; nothing
	// was changed.
	OutcomeRefused Outcome = "refused"
	// OutcomeFailed: the API server failed the action.
	OutcomeFailed Outcome = "failed"
)

// Record is the audit record of one request.
type Record struct {
	Time      time.Time
	RequestID string
	// Actor is who asked, as the entry point knows it: the kube user, or
	// the responder's caller (its address; the token says nothing more).
	Actor string
	// RequestedBy is who the request says it is from (a playbook's name).
	RequestedBy string
	Action      Action
	Target      Target
	CaseID      int64
	Reason      string
	DryRun      bool
	Outcome     Outcome
	Code        Code
	Message     string
	Duration    time.Duration
}

// Auditor keeps audit records. Record returns warnings for the requester
// (a note that could not be written), never an error: an action done
// stays done.
type Auditor interface {
	Record(ctx context.Context, r Record) []string
}

// Auditors records into each of its auditors.
type Auditors []Auditor

// Record implements Auditor.
func (as Auditors) Record(ctx context.Context, r Record) []string {
	var w []string
	for _, a := range as {
		w = append(w, a.Record(ctx, r)...)
	}
	return w
}

// LogAuditor writes one log line per request.
type LogAuditor struct{ Log *slog.Logger }

// Record implements Auditor.
func (l LogAuditor) Record(ctx context.Context, r Record) []string {
	level := slog.LevelInfo
	if r.Outcome == OutcomeRefused || r.Outcome == OutcomeFailed {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("request_id", r.RequestID), slog.String("actor", r.Actor), slog.String("action", string(r.Action)),
		slog.String("target", r.Target.String()), slog.String("outcome", string(r.Outcome)),
		slog.Int64("duration_ms", r.Duration.Milliseconds()), slog.String("message", r.Message),
	}
	if r.RequestedBy != "" {
		attrs = append(attrs, slog.String("requested_by", r.RequestedBy))
	}
	if r.CaseID != 0 {
		attrs = append(attrs, slog.Int64("case_id", r.CaseID))
	}
	if r.Code != "" {
		attrs = append(attrs, slog.String("code", string(r.Code)))
	}
	if r.DryRun {
		attrs = append(attrs, slog.Bool("dry_run", true))
	}
	if r.Reason != "" {
		attrs = append(attrs, slog.String("reason", r.Reason))
	}
	l.Log.LogAttrs(ctx, level, "audit", attrs...)
	return nil
}

// NoteWriter writes a note into a SOAR case; *phantom.Client is one.
type NoteWriter interface {
	CreateNote(ctx context.Context, n phantom.Note) (int64, error)
}

// NoteAuditor writes the record of every request naming a case into that
// case, as a SOAR note. Requests refused as unauthorised never reach it:
// the entry points record those in the log only, so that nobody without
// the token can write into cases.
type NoteAuditor struct {
	SOAR NoteWriter
	// Source names the entry point in the note: "responder", "kubectl".
	Source string
	// Timeout bounds the note's request (default 10 s).
	Timeout time.Duration
}

// Record implements Auditor.
func (n NoteAuditor) Record(ctx context.Context, r Record) []string {
	if r.CaseID == 0 || r.Code == Unauthorized {
		return nil
	}
	timeout := n.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	title, content := NoteOf(r, n.Source)
	if _, err := n.SOAR.CreateNote(ctx, phantom.Note{ContainerID: r.CaseID, Title: title, Content: content, NoteType: "general", NoteFormat: "markdown"}); err != nil {
		return []string{fmt.Sprintf("the note could not be written into case %d: %v", r.CaseID, err)}
	}
	return nil
}

// NoteOf is the title and markdown content of the note for r.
func NoteOf(r Record, source string) (title, content string) {
	target := r.Target.String()
	dry := ""
	if r.DryRun {
		dry = " (dry run)"
	}
	title = fmt.Sprintf("falco-phantom %s %s: %s%s", r.Action, target, r.Outcome, dry)
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** of `%s`: **%s**%s in %d ms\n\n", r.Action, target, r.Outcome, dry, r.Duration.Milliseconds())
	fmt.Fprintf(&b, "%s\n\n", mdEscape(r.Message))
	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", k, mdEscape(v))
		}
	}
	row("time", r.Time.UTC().Format(time.RFC3339Nano))
	row("by", strings.TrimSpace(r.RequestedBy+" via "+source+" ("+r.Actor+")"))
	row("reason", r.Reason)
	if r.Target.Node != "" {
		row("node", r.Target.Node)
	}
	row("container", r.Target.ContainerID)
	if r.Code != "" {
		row("error", string(r.Code))
	}
	row("request", r.RequestID)
	return title, b.String()
}

// mdEscape keeps text from breaking the note's markdown table.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}
