package install

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/fields"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/cli"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

// PlaybookSettings is what the phantom playbook accepts with -e.
var PlaybookSettings = []string{"PHANTOM_BASE_URL", "PHANTOM_USER", "PHANTOM_PASSWORD", "PHANTOM_TOKEN", "VERIFY_SSL", "PHANTOM_LABEL"}

// PlaybookFlags is the original command line.
type PlaybookFlags struct {
	Playbook string
	Env      []string
	Topics   []string
	NATSURL  string
	Runtime  install.Runtime
}

// PlaybookOptions maps the original command line onto install's options:
// the playbook's settings become the SOAR options (the credentials end up
// in a Secret, never in the Function), each topic a trigger. Falco is left
// alone, as deploy_playbook did; NATS is used at --nats-url, or installed.
func PlaybookOptions(f PlaybookFlags, namespace string) (install.Options, error) {
	o := install.Defaults()
	o.Namespace, o.SkipFalco, o.NATSURL = namespace, true, f.NATSURL
	if f.Playbook != "phantom" {
		return o, fmt.Errorf("-p %q: this project provides the phantom playbook only (-p phantom)", f.Playbook)
	}
	if len(f.Topics) == 0 {
		return o, fmt.Errorf("-t is required: the subjects to trigger on, e.g. -t 'falco.*.*'")
	}
	o.Runtime, o.Subjects = f.Runtime, f.Topics
	if f.Runtime == install.RuntimeDefault && len(f.Topics) > 1 {
		return o, fmt.Errorf("with --runtime default the forwarder consumes one subject: give one -t (a wildcard such as falco.> covers all)")
	}
	for i, kv := range f.Env {
		key, value, ok := strings.Cut(kv, "=")
		if !ok {
			// Not repeated: it may be a password typed without its key.
			return o, fmt.Errorf("-e number %d: want KEY=VALUE (one of %s)", i+1, strings.Join(PlaybookSettings, ", "))
		}
		switch key {
		case "PHANTOM_BASE_URL":
			o.PhantomURL = value
		case "PHANTOM_USER":
			o.PhantomAuth.User = value
		case "PHANTOM_PASSWORD":
			o.PhantomAuth.Password = value
		case "PHANTOM_TOKEN":
			o.PhantomAuth.Token = value
		case "PHANTOM_LABEL":
			o.PhantomLabel = value
		case "VERIFY_SSL":
			verify, err := input.Bool(value)
			if err != nil {
				return o, fmt.Errorf("-e VERIFY_SSL=%s: %w", value, err)
			}
			o.InsecureSkipTLSVerify = !verify
		default:
			return o, fmt.Errorf("-e %s: not a setting of the phantom playbook (accepted: %s)", key, strings.Join(PlaybookSettings, ", "))
		}
	}
	return o, nil
}

// playbookFlags names the options' fields as the original command line
// sets them; the rest keep install's flag names.
var playbookFlags = map[string]string{
	"PhantomURL": "-e PHANTOM_BASE_URL", "PhantomAuth.User": "-e PHANTOM_USER", "PhantomAuth.Password": "-e PHANTOM_PASSWORD",
	"PhantomAuth.Token": "-e PHANTOM_TOKEN", "PhantomLabel": "-e PHANTOM_LABEL", "InsecureSkipTLSVerify": "-e VERIFY_SSL=false",
	"Subjects": "-t", "NATSURL": "--nats-url", "Runtime": "--runtime",
}

func playbookFlag(field string) string {
	if name, ok := playbookFlags[field]; ok {
		return name
	}
	if name, ok := installFlags[field]; ok {
		return name
	}
	return field
}

type playbookOptions struct {
	env    *cli.Env
	f      PlaybookFlags
	dryRun bool
	wait   bool
	o      install.Options
}

// NewPlaybookCommand returns the playbook command with its deploy subcommand.
func NewPlaybookCommand(env *cli.Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "playbook",
		Short: "The original deploy_playbook command line (Kubeless)",
		Args:  cobra.NoArgs,
	}
	o := &playbookOptions{env: env, f: PlaybookFlags{Runtime: install.RuntimeKubeless}}
	deploy := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy the phantom playbook the way deploy_playbook did",
		Long: `Accepts the original command line of the 2018 Falco response engine,

  ./deploy_playbook -p phantom -e PHANTOM_USER=... -e PHANTOM_PASSWORD=... -e PHANTOM_BASE_URL=... -t "falco.*.*"

and maps it onto "kubectl falco-phantom install": the forwarder as the
Kubeless Function falco-phantom with one NATSTrigger falco-phantom-trigger-N
per -t, its credentials in a Secret (not in the Function, unlike the
original). Falco is left alone, as deploy_playbook did. Kubeless cannot run
on Kubernetes 1.22 or newer: --runtime default runs the same settings as a
Deployment on NATS JetStream instead (see docs/kubeless.md).

Values given with -e show in the process list, as they did; prefer
"kubectl falco-phantom install" with --phantom-token-file for new set-ups.`,
		Example: `  kubectl falco-phantom playbook deploy -p phantom -e PHANTOM_USER=automation -e PHANTOM_PASSWORD=... \
      -e PHANTOM_BASE_URL=https://soar.example.com -t "falco.*.*"

  # the same settings, on a current cluster
  kubectl falco-phantom playbook deploy --runtime default -p phantom -e PHANTOM_BASE_URL=https://soar.example.com \
      -e PHANTOM_TOKEN=... -t "falco.>"`,
		Args: cobra.NoArgs,
		RunE: cmdmain.RunE(o),
	}
	fl := deploy.Flags()
	fl.StringVarP(&o.f.Playbook, "playbook", "p", "", "the playbook: phantom")
	fl.StringArrayVarP(&o.f.Env, "env", "e", nil, "a setting KEY=VALUE (repeatable): "+strings.Join(PlaybookSettings, ", "))
	fl.StringArrayVarP(&o.f.Topics, "topic", "t", nil, "a NATS subject to trigger on (repeatable), e.g. falco.*.*")
	fl.StringVar(&o.f.NATSURL, "nats-url", "", "the NATS Falco publishes to (default: install NATS)")
	fl.StringVar((*string)(&o.f.Runtime), "runtime", string(o.f.Runtime), "kubeless (as the original) or default (a Deployment on NATS JetStream)")
	fl.BoolVar(&o.dryRun, "dry-run", false, "print what would be applied (secrets redacted)")
	fl.BoolVar(&o.wait, "wait", true, "wait for NATS to be ready when it is installed")
	cmd.AddCommand(deploy)
	return cmd
}

func (o *playbookOptions) Complete(*cobra.Command, []string) error {
	var err error
	if o.o, err = PlaybookOptions(o.f, o.env.Namespace()); err != nil {
		return err
	}
	if o.o.PhantomAuth.Password != "" || o.o.PhantomAuth.Token != "" {
		fmt.Fprintln(o.env.Streams.ErrOut, "warning: -e PHANTOM_PASSWORD/PHANTOM_TOKEN are visible in the process list; they are stored in a Secret, never in the Function")
	}
	o.o.Wait = o.wait
	return nil
}

func (o *playbookOptions) Validate() error { return fields.Rename(o.o.Validate(), playbookFlag) }

func (o *playbookOptions) Run(ctx context.Context) error {
	return apply(ctx, o.env, o.o, o.dryRun, playbookFlag)
}
