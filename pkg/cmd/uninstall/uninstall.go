// Package uninstall is the "uninstall" command.
package uninstall

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/cli"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

type options struct {
	env *cli.Env
	o   install.UninstallOptions
}

// NewCommand returns the uninstall command.
func NewCommand(env *cli.Env) *cobra.Command {
	o := &options{env: env}
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove what install created, and nothing else",
		Long: `Remove what "kubectl falco-phantom install" created in the namespace, as
its install record says: the Helm releases, the credential Secrets it wrote,
the volume claims of NATS and the mock SOAR, and the namespace if install
created it. Anything else in the namespace is left alone.

Pods the responder isolated stay isolated (cut off the network, kept for
forensics): uninstall lists them. --release-isolated releases them with your
own rights and deletes the isolation NetworkPolicies left.`,
		Example: `  kubectl falco-phantom uninstall
  # keep NATS (and the alerts waiting in it) and Falco
  kubectl falco-phantom uninstall --keep-nats --keep-falco
  # give the isolated pods their network back as well
  kubectl falco-phantom uninstall --release-isolated`,
		Args: cobra.NoArgs,
		RunE: cmdmain.RunE(o),
	}
	cmd.Flags().BoolVar(&o.o.KeepNATS, "keep-nats", false, "keep the NATS release and its data")
	cmd.Flags().BoolVar(&o.o.KeepFalco, "keep-falco", false, "keep the Falco release")
	cmd.Flags().BoolVar(&o.o.ReleaseIsolated, "release-isolated", false, "release the pods the responder isolated and delete the isolation NetworkPolicies")
	return cmd
}

func (o *options) Complete(*cobra.Command, []string) error {
	o.o.Namespace = o.env.Namespace()
	return nil
}

func (o *options) Validate() error { return nil }

func (o *options) Run(ctx context.Context) error {
	c, err := o.env.Connect(ctx)
	if err != nil {
		return err
	}
	res, err := c.Installer(o.env.Streams.ErrOut).Uninstall(ctx, o.o)
	if res != nil {
		printIsolation(o.env.Streams.Out, res)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(o.env.Streams.Out, "falco-phantom is uninstalled from namespace %s.\n", o.o.Namespace)
	return nil
}

// printIsolation says which pods are still isolated, and which were
// released.
func printIsolation(w io.Writer, res *install.UninstallResult) {
	if len(res.Released) > 0 {
		fmt.Fprintf(w, "Released %d isolated pod(s):\n", len(res.Released))
		for _, p := range res.Released {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	if res.IsolatedUnknown != "" {
		fmt.Fprintf(w, "Could not check for pods left isolated: %s\n", res.IsolatedUnknown)
	}
	if len(res.Isolated) == 0 {
		return
	}
	fmt.Fprintf(w, "Still isolated (cut off the network; release them with --release-isolated):\n")
	for _, p := range res.Isolated {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
