// Package plugin is the root of the kubectl-falco_phantom command tree.
package plugin

import (
	"context"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/cli"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/deadletters"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/demo"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/output"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/respond"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/status"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/testshell"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/uninstall"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/version"
)

// Run runs the plugin with args (without the program name).
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	cmd := NewCommand(streams, getenv)
	return cmdmain.Execute(ctx, cmd, args)
}

// NewCommand returns the root command with every subcommand.
func NewCommand(streams genericiooptions.IOStreams, getenv func(string) string) *cobra.Command {
	env := &cli.Env{Kube: genericclioptions.NewConfigFlags(true), Streams: streams, Getenv: getenv}
	cmd := &cobra.Command{
		Use:   "kubectl falco-phantom",
		Short: "Send Falco's runtime alerts to Splunk SOAR (Phantom)",
		Long: `kubectl falco-phantom puts Falco, NATS and a forwarder on a cluster so that
Falco's runtime alerts (a shell in a container, a write below /etc...) become
cases in Splunk SOAR (formerly Phantom), and proves it works end to end.

  install       put NATS, Falco, the forwarder (and a mock SOAR) on the cluster
  status        show whether every component runs and alerts reach SOAR
  test-shell    open a shell in a container and prove its alert became a case
  dead-letters  list, show, drop or replay what the forwarder could not deliver
  uninstall     remove what install created
  demo          the whole pipeline on this machine, no cluster needed
  playbook      the original deploy_playbook command line (Kubeless)`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// kubectl passes plugin names with underscores; show ours with a dash.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl falco-phantom"},
	}
	cmdmain.SetVersion(cmd, "kubectl-falco_phantom")
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	env.Kube.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(
		install.NewCommand(env),
		uninstall.NewCommand(env),
		status.NewCommand(env),
		testshell.NewCommand(env),
		respond.NewCommand(env),
		install.NewPlaybookCommand(env),
		deadletters.NewCommand(streams, &clusterNATS{env: env}, "kubectl falco-phantom dead-letters"),
		demo.NewCommand(streams, getenv),
		newVersionCommand(streams.Out),
	)
	return cmd
}

func newVersionCommand(out io.Writer) *cobra.Command {
	var format output.Format
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := format.Validate(); err != nil {
				return err
			}
			v := version.Get()
			return output.Print(out, format, v, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, cmdmain.VersionLine("kubectl-falco_phantom"))
				return err
			})
		},
	}
	output.AddFlag(cmd, &format)
	return cmd
}

// clusterNATS reaches the NATS of the pipeline installed in the namespace
// (-n): through a port-forward, or at --nats-url.
type clusterNATS struct {
	env *cli.Env
	url string
}

func (c *clusterNATS) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.url, "nats-url", "", "reach NATS at this URL instead (default: a port-forward to the NATS install put in -n)")
}

func (c *clusterNATS) Connect(ctx context.Context) (*nats.Conn, func(), error) {
	return c.env.ConnectNATS(ctx, c.env.Namespace(), c.url)
}
