// Package uninstall is the "uninstall" command.
package uninstall

import (
	"context"
	"fmt"

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
created it. Anything else in the namespace is left alone.`,
		Example: `  kubectl falco-phantom uninstall
  # keep NATS (and the alerts waiting in it) and Falco
  kubectl falco-phantom uninstall --keep-nats --keep-falco`,
		Args: cobra.NoArgs,
		RunE: cmdmain.RunE(o),
	}
	cmd.Flags().BoolVar(&o.o.KeepNATS, "keep-nats", false, "keep the NATS release and its data")
	cmd.Flags().BoolVar(&o.o.KeepFalco, "keep-falco", false, "keep the Falco release")
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
	if err := c.Installer(o.env.Streams.ErrOut).Uninstall(ctx, o.o); err != nil {
		return err
	}
	fmt.Fprintf(o.env.Streams.Out, "falco-phantom is uninstalled from namespace %s.\n", o.o.Namespace)
	return nil
}
