// Package uninstall is the "uninstall" command.
package uninstall

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/cluster"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

// NewCommand returns the uninstall command.
func NewCommand(kube *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var o install.UninstallOptions
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cluster.Connect(kube)
			if err != nil {
				return err
			}
			o.Namespace = c.Namespace
			in := c.Installer(streams.ErrOut)
			if err := in.Uninstall(cmd.Context(), o); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "falco-phantom is uninstalled from namespace %s.\n", o.Namespace)
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.KeepNATS, "keep-nats", false, "keep the NATS release and its data")
	cmd.Flags().BoolVar(&o.KeepFalco, "keep-falco", false, "keep the Falco release")
	return cmd
}
