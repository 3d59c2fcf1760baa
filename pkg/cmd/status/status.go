// Package status is the "status" command.
package status

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/cli"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/output"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/status"
)

// ExitUnhealthy is the exit code when a component is down.
const ExitUnhealthy = 3

// UnhealthyError is returned (after the report is printed) when something is down.
type UnhealthyError struct{ Problems []string }

func (e *UnhealthyError) Error() string {
	return "not healthy: " + strings.Join(e.Problems, "; ")
}

// ExitCode tells the shell that something is down.
func (e *UnhealthyError) ExitCode() int { return ExitUnhealthy }

type options struct {
	env    *cli.Env
	format output.Format
	ns     string
}

// NewCommand returns the status command.
func NewCommand(env *cli.Env) *cobra.Command {
	o := &options{env: env}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether every component runs and alerts reach SOAR",
		Long: `Show each component installed by "kubectl falco-phantom install": its Helm
release, whether its pods are ready, and what the forwarder reports (alerts
received, delivered, retried, dead-lettered, and whether SOAR is reachable);
with the responder, what it may do and the pods it isolated.
The exit code is 0 when everything is healthy, ` + fmt.Sprint(ExitUnhealthy) + ` when something is down,
and ` + fmt.Sprint(cli.ExitUnreachable) + ` when the cluster cannot be reached.`,
		Example: `  kubectl falco-phantom status
  kubectl falco-phantom status -o json | jq .forwarder`,
		Args: cobra.NoArgs,
		RunE: cmdmain.RunE(o),
	}
	output.AddFlag(cmd, &o.format)
	return cmd
}

func (o *options) Complete(*cobra.Command, []string) error {
	o.ns = o.env.Namespace()
	return nil
}

func (o *options) Validate() error { return o.format.Validate() }

func (o *options) Run(ctx context.Context) error {
	c, err := o.env.Connect(ctx)
	if err != nil {
		return err
	}
	checker := &status.Checker{Helm: c.Helm, Kube: c.Kube}
	r, err := checker.Check(ctx, o.ns)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Host, err)
	}
	if err := output.Print(o.env.Streams.Out, o.format, r, func(w io.Writer) error { return Table(w, r) }); err != nil {
		return err
	}
	if !r.Healthy {
		return &UnhealthyError{Problems: r.Problems}
	}
	return nil
}

// Table prints a report for people.
func Table(w io.Writer, r *status.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tRELEASE\tCHART\tSTATUS\tREADY\tWORKLOADS")
	for _, c := range r.Components {
		ready := "yes"
		if !c.Ready {
			ready = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Release, dash(c.Chart), c.ReleaseStatus, ready, dash(strings.Join(c.Workloads, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if f := r.Forwarder; f != nil {
		reach := "unknown (no ready forwarder pod to ask)"
		if f.PhantomReachable != nil {
			reach = map[bool]string{true: "yes", false: "NO"}[*f.PhantomReachable]
		}
		fmt.Fprintf(w, "\nForwarder: %d/%d pods ready; alerts received %.0f, delivered %.0f, retried %.0f, dead-lettered %.0f\n",
			f.ReadyPods, f.Pods, f.Received, f.Delivered, f.Retried, f.DeadLettered)
		fmt.Fprintf(w, "SOAR %s reachable: %s\n", f.PhantomURL, reach)
	}
	if rs := r.Responder; rs != nil {
		responderTable(w, rs)
	}
	if r.Healthy {
		fmt.Fprintln(w, "\nHealthy.")
		return nil
	}
	fmt.Fprintln(w, "\nProblems:")
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
	return nil
}

// responderTable says what the responder may do and which pods are
// isolated.
func responderTable(w io.Writer, rs *status.Responder) {
	actions := make([]string, len(rs.Actions))
	for i, a := range rs.Actions {
		actions[i] = string(a)
	}
	fmt.Fprintf(w, "\nResponder: %d/%d pods ready at %s; acts in %s with %s\n", rs.ReadyPods, rs.Pods, dash(rs.URL),
		dash(strings.Join(rs.Namespaces, ",")), dash(strings.Join(actions, ",")))
	switch {
	case rs.IsolatedUnknown != "":
		fmt.Fprintf(w, "Isolated pods: unknown (%s)\n", rs.IsolatedUnknown)
	case len(rs.Isolated) == 0:
		fmt.Fprintln(w, "Isolated pods: none")
	default:
		fmt.Fprintf(w, "Isolated pods (%d):\n", len(rs.Isolated))
		for _, p := range rs.Isolated {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
