// Package forwarder is the command line of the falco-phantom-forwarder
// service.
package forwarder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/deadletters"
	fw "github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
)

// Run runs the forwarder command line with args (without the program name).
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	cmd := NewCommand(streams.Out, streams.ErrOut, getenv)
	return cmdmain.Execute(ctx, cmd, args)
}

type options struct {
	cfg       fw.Config
	logFormat string
	logLevel  string
}

// NewCommand returns the forwarder's root command.
func NewCommand(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	o := &options{cfg: fw.Defaults()}
	var finish func() error
	cmd := &cobra.Command{
		Use:   "falco-phantom-forwarder",
		Short: "Forward Falco events from NATS to Splunk SOAR (Phantom)",
		Long: `Forward Falco events from NATS to Splunk SOAR (Phantom).

Events published by falcosidekick on falco.<priority>.<rule> are stored in a
JetStream stream and consumed by a durable consumer: each alert becomes an
artifact in the SOAR case of its incident, and is acknowledged only once
SOAR holds it.

Secrets are read from the environment or from files only:
  PHANTOM_USER, PHANTOM_PASSWORD, PHANTOM_TOKEN, or PHANTOM_*_FILE.
Every flag can also be set with the variable named in its help.`,
		Example: `  PHANTOM_BASE_URL=https://soar.example.com PHANTOM_TOKEN=... \
  NATS_URL=nats://nats.falco.svc:4222 falco-phantom-forwarder

  # what could not be delivered, and why; replay what SOAR refused once the cause is fixed
  NATS_URL=nats://127.0.0.1:4222 falco-phantom-forwarder dead-letters list
  NATS_URL=nats://127.0.0.1:4222 falco-phantom-forwarder dead-letters replay`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := finish(); err != nil {
				return err
			}
			log, err := newLogger(stderr, o.logFormat, o.logLevel)
			if err != nil {
				return err
			}
			f, err := fw.New(o.cfg, log)
			if err != nil {
				return err
			}
			return f.Run(cmd.Context())
		},
	}
	cmdmain.SetVersion(cmd, "falco-phantom-forwarder")
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	finish = BindFlags(&o.cfg, cmd.Flags(), getenv)
	cmd.Flags().StringVar(&o.logFormat, "log-format", input.Env(getenv, "LOG_FORMAT", "json"), "log format: json or text [LOG_FORMAT]")
	cmd.Flags().StringVar(&o.logLevel, "log-level", input.Env(getenv, "LOG_LEVEL", "info"), "log level: debug, info, warn, error [LOG_LEVEL]")
	streams := genericiooptions.IOStreams{Out: stdout, ErrOut: stderr}
	cmd.AddCommand(deadletters.NewCommand(streams, deadletters.NewNATSConnector(getenv), "falco-phantom-forwarder dead-letters"),
		deadletters.NewReplayAlias(streams, deadletters.NewNATSConnector(getenv)), newVersionCommand(stdout))
	return cmd
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(stdout, cmdmain.VersionLine("falco-phantom-forwarder"))
			return err
		},
	}
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, errors.New("log format: want json or text")
}
