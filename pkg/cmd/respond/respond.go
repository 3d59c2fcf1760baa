// Package respond is the "respond" command: the response actions for an
// analyst at a terminal, with the analyst's own kubeconfig rights.
package respond

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/cli"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/output"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// ExitRefused is the exit code of a request refused or failed: nothing
// was changed.
const ExitRefused = 2

// RefusedError is a request refused or failed.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return string(respond.CodeOf(e.Err)) + ": " + e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// ExitCode tells scripts that nothing was done.
func (e *RefusedError) ExitCode() int { return ExitRefused }

type options struct {
	env    *cli.Env
	format output.Format
	req    respond.Request

	labels, annotations []string
	gracePeriod         int64
	installNamespace    string
	noNote              bool
	// named is true when -n was given.
	named bool
}

// NewCommand returns the respond command.
func NewCommand(env *cli.Env) *cobra.Command {
	o := &options{env: env}
	cmd := &cobra.Command{
		Use:   "respond ACTION (--pod NAME | --container-id ID) [-n NAMESPACE] [--case ID]",
		Short: "Isolate, release, label, terminate, cordon or describe the pod of an alert",
		Long: `Act on the pod an alert names, with your own kubeconfig rights: the same
actions the responder service does for SOAR playbooks (see docs/respond.md).

  isolate    label the pod falco-phantom.io/isolated=<case> and make sure the
             NetworkPolicy falco-phantom-isolate denies all its traffic; the
             pod keeps running, for forensics
  release    undo isolate (and remove the policy once no pod needs it)
  label      set (--label key=value) or remove (--label key-) labels
  annotate   the same for annotations (--annotation)
  terminate  delete the pod (--grace-period; --allow-standalone for a pod no
             controller owns, which will not come back)
  cordon     mark the pod's node unschedulable (--taint key=value:Effect too)
  uncordon   undo cordon (and remove the --taint named)
  describe   owner chain, images with digests, node, service account and
             what makes the pod risky; changes nothing

The target is --pod in -n, or --container-id as Falco reports it (the
containerId of the case's artifacts): its pod is looked up in -n, or in every
namespace but the pipeline's and kube-system. Each action is idempotent and
has a --dry-run. With --case, the outcome is written into that SOAR case as a
note (the SOAR install configured; --no-note to skip).

Exit codes: 0 done or already done, 2 refused or failed (nothing changed),
5 the cluster unreachable.`,
		Example: `  kubectl falco-phantom respond isolate -n shop --pod web-7d4b9c-x2x7k --case 42
  kubectl falco-phantom respond isolate --container-id 3f2a9c1b7d4e --case 42 --dry-run
  kubectl falco-phantom respond describe -n shop --pod web-7d4b9c-x2x7k -o json
  kubectl falco-phantom respond label -n shop --pod web-7d4b9c-x2x7k --label falco-phantom.io/case=42
  kubectl falco-phantom respond cordon -n shop --pod web-7d4b9c-x2x7k --taint falco-phantom.io/compromised=true:NoSchedule
  kubectl falco-phantom respond release -n shop --pod web-7d4b9c-x2x7k --case 42`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: actionNames(),
		RunE:      cmdmain.RunE(o),
	}
	f := cmd.Flags()
	q := &o.req
	f.StringVar(&q.Pod, "pod", "", "pod to act on, in -n")
	f.StringVar(&q.ContainerID, "container-id", "", "act on the pod running this container (Falco's container.id)")
	f.Int64Var(&q.CaseID, "case", 0, "SOAR case (container id) the action is for: the outcome is noted there")
	f.StringVar(&q.Reason, "reason", "", "why, for the audit trail")
	f.BoolVar(&q.DryRun, "dry-run", false, "say what would be done; change nothing")
	f.StringArrayVar(&o.labels, "label", nil, "label: key=value to set, key- to remove (repeatable)")
	f.StringArrayVar(&o.annotations, "annotation", nil, "annotate: key=value to set, key- to remove (repeatable)")
	f.Int64Var(&o.gracePeriod, "grace-period", -1, "terminate: seconds to let the pod stop (default: its own)")
	f.BoolVar(&q.AllowStandalone, "allow-standalone", false, "terminate: delete a pod no controller owns (it will not come back)")
	f.StringVar(&q.Taint, "taint", "", "cordon, uncordon: taint key[=value]:Effect to add or remove")
	f.StringVar(&o.installNamespace, "install-namespace", install.DefaultNamespace, "namespace of the pipeline: never searched by --container-id, and where its SOAR is read from")
	f.BoolVar(&o.noNote, "no-note", false, "do not write the outcome into the --case")
	output.AddFlag(cmd, &o.format)
	return cmd
}

func actionNames() []string {
	var s []string
	for _, a := range respond.Actions() {
		s = append(s, string(a))
	}
	return s
}

func (o *options) Complete(cmd *cobra.Command, args []string) error {
	a, err := respond.ParseAction(args[0])
	if err != nil {
		return err
	}
	o.req.Action = a
	o.named = o.env.Kube.Namespace != nil && *o.env.Kube.Namespace != ""
	if o.req.Pod != "" || o.named {
		// -n, or the kubeconfig context's namespace, as kubectl does.
		if o.req.Namespace, _, err = o.env.Kube.ToRawKubeConfigLoader().Namespace(); err != nil {
			return fmt.Errorf("namespace: %w", err)
		}
	}
	if o.req.Labels, err = pairs("--label", o.labels); err != nil {
		return err
	}
	if o.req.Annotations, err = pairs("--annotation", o.annotations); err != nil {
		return err
	}
	if cmd.Flags().Changed("grace-period") {
		o.req.GracePeriodSeconds = &o.gracePeriod
	}
	return nil
}

// pairs reads key=value and key- flags into the request's map.
func pairs(flag string, in []string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, s := range in {
		k, v, ok := strings.Cut(s, "=")
		switch {
		case ok:
			m[k] = v
		case strings.HasSuffix(s, "-"):
			m[s] = ""
		default:
			return nil, fmt.Errorf("%s %q: write key=value to set, key- to remove", flag, s)
		}
	}
	return m, nil
}

func (o *options) Validate() error { return o.format.Validate() }

func (o *options) Run(ctx context.Context) error {
	c, err := o.env.Connect(ctx)
	if err != nil {
		return err
	}
	policy := respond.Policy{Namespaces: []string{respond.AllNamespaces}, Protected: respond.ProtectedNamespaces(o.installNamespace)}
	if o.named {
		// Named with -n: allowed, even a protected one.
		policy.Namespaces = append(policy.Namespaces, o.req.Namespace)
	}
	r := &respond.Responder{Kube: c.Kube, Policy: policy}
	var notes []string
	if o.req.CaseID != 0 && !o.noNote {
		_, soar, err := install.SOARClient(ctx, c.Kube, c.Config, o.installNamespace)
		if err != nil {
			// The action matters more than its note: say so, and act.
			notes = append(notes, fmt.Sprintf("the outcome will not be noted in case %d: %v", o.req.CaseID, err))
		} else {
			r.Audit = respond.NoteAuditor{SOAR: soar, Source: "kubectl falco-phantom respond"}
		}
	}
	res, err := r.Do(ctx, o.req, whoami(ctx, c))
	if err != nil {
		return &RefusedError{Err: err}
	}
	res.Warnings = append(notes, res.Warnings...)
	return output.Print(o.env.Streams.Out, o.format, res, func(w io.Writer) error { return Text(w, res, o.req.CaseID != 0 && !o.noNote) })
}

// whoami is the kube user, as the API server sees it: the audit says who
// acted.
func whoami(ctx context.Context, c *cli.Cluster) string {
	r, err := c.Kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || r.Status.UserInfo.Username == "" {
		return "kube user (unknown: " + shortErr(err) + ")"
	}
	return "kube user " + r.Status.UserInfo.Username
}

func shortErr(err error) string {
	if err == nil {
		return "no name"
	}
	return err.Error()
}

// Text prints the outcome for people.
func Text(w io.Writer, r *respond.Result, noted bool) error {
	state := "done"
	if !r.Changed {
		state = "nothing to do"
	}
	if r.DryRun {
		state = "dry run"
	}
	if r.Action == respond.Describe {
		state = "read"
	}
	fmt.Fprintf(w, "%s %s: %s in %d ms\n  %s\n", r.Action, r.Target, state, r.DurationMS, r.Message)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	if noted && !hasNoteWarning(r) {
		fmt.Fprintf(w, "  noted in case %d\n", r.CaseID)
	}
	if d := r.Details; d != nil {
		describe(w, d)
	}
	return nil
}

func hasNoteWarning(r *respond.Result) bool {
	for _, w := range r.Warnings {
		if strings.Contains(w, "note") {
			return true
		}
	}
	return false
}

func describe(w io.Writer, d *respond.Description) {
	fmt.Fprintf(w, "\nPod %s/%s (uid %s), %s, on node %s, service account %s\n", d.Namespace, d.Pod, d.UID, orDash(d.Phase), orDash(d.Node), orDash(d.ServiceAccount))
	if len(d.Owners) > 0 {
		var chain []string
		for _, o := range d.Owners {
			s := o.Kind + " " + o.Name
			if o.Note != "" {
				s += " (" + o.Note + ")"
			}
			chain = append(chain, s)
		}
		fmt.Fprintf(w, "Owners: %s\n", strings.Join(chain, " <- "))
	} else {
		fmt.Fprintln(w, "Owners: none (a standalone pod)")
	}
	for _, c := range d.Containers {
		fmt.Fprintf(w, "Container %s (%s): %s", c.Name, c.Kind, c.Image)
		if c.ImageID != "" {
			fmt.Fprintf(w, " = %s", c.ImageID)
		}
		fmt.Fprintln(w)
	}
	if d.Isolated != "" {
		fmt.Fprintf(w, "Isolated: for case %s\n", d.Isolated)
	}
	if len(d.Risks) == 0 {
		fmt.Fprintln(w, "Risks: none found")
		return
	}
	fmt.Fprintln(w, "Risks:")
	for _, r := range d.Risks {
		fmt.Fprintf(w, "  - %s\n", r)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
