// Command mockphantom serves a mock Splunk SOAR (Phantom) REST API backed
// by SQLite; see the mockphantom package and --help.
package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
)

func main() { cmdmain.Main(Run) }

// Run is the mockphantom command; args exclude the program name. It
// serves until ctx is done, then shuts down gracefully and returns nil.
// Logs go to streams.ErrOut, --help to streams.Out. The environment is
// read through getenv only.
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	return run(ctx, args, streams, getenv, nil)
}

// run is Run with a hook that tests use to learn the server's address:
// ready, when set, is called once the server listens.
func run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string,
	ready func(*mockphantom.Running)) error {
	return cmdmain.Execute(ctx, newCommand(streams, getenv, ready), args)
}

func newCommand(streams genericiooptions.IOStreams, getenv func(string) string, ready func(*mockphantom.Running)) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "mockphantom --db FILE [--user U] (--password-file F | --token-file F | --insecure-no-auth) [flags]",
		Short: "A mock Splunk SOAR (Phantom) REST API backed by SQLite",
		Long:  "mockphantom: a mock Splunk SOAR (Phantom) REST API backed by SQLite.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q (see --help)", args)
			}
			return nil
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(cmd.Flags(), getenv, streams.ErrOut); err != nil {
				return err
			}
			if err := o.validate(); err != nil {
				return err
			}
			return o.run(cmd.Context(), streams.ErrOut, ready)
		},
	}
	cmdmain.SetVersion(cmd, "mockphantom")
	// Declared here, so that cobra adds no -v: every flag is a long one.
	cmd.Flags().Bool("version", false, "print the version and exit")
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.SetUsageTemplate(`Usage: {{.UseLine}}

Secrets can also come from ` + envUser + `, ` + envPassword + ` and ` + envToken + `.

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}
`)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w (see --help)", err)
	})
	o.bindFlags(cmd.Flags(), getenv)
	return cmd
}
