// Package playbook is the "playbook deploy" command: the original
// `deploy_playbook -p phantom -e KEY=VALUE ... -t SUBJECT ...` command line,
// accepted as it was and mapped onto install.
package playbook

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	cmdinstall "github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

// Settings is what the phantom playbook accepts with -e.
var Settings = []string{"PHANTOM_BASE_URL", "PHANTOM_USER", "PHANTOM_PASSWORD", "PHANTOM_TOKEN", "VERIFY_SSL", "PHANTOM_LABEL"}

// Flags is the original command line.
type Flags struct {
	Playbook string
	Env      []string
	Topics   []string
	NATSURL  string
	Runtime  string
}

// Options maps the original command line onto install's options: the
// playbook's settings become the SOAR options (the credentials end up in a
// Secret, never in the Function), each topic a trigger. Falco is left
// alone, as deploy_playbook did; NATS is used at --nats-url, or installed.
func Options(f Flags, namespace string) (install.Options, error) {
	o := install.Defaults()
	o.Namespace, o.SkipFalco, o.NATSURL = namespace, true, f.NATSURL
	if f.Playbook != "phantom" {
		return o, fmt.Errorf("-p %q: this project provides the phantom playbook only (-p phantom)", f.Playbook)
	}
	if len(f.Topics) == 0 {
		return o, fmt.Errorf("-t is required: the subjects to trigger on, e.g. -t 'falco.*.*'")
	}
	o.Runtime, o.Subject, o.Subjects = f.Runtime, f.Topics[0], f.Topics
	if f.Runtime == install.RuntimeDefault {
		o.Subjects = nil
		if len(f.Topics) > 1 {
			return o, fmt.Errorf("with --runtime default the forwarder consumes one subject: give one -t (a wildcard such as falco.> covers all)")
		}
	}
	for i, kv := range f.Env {
		key, value, ok := strings.Cut(kv, "=")
		if !ok {
			// Not repeated: it may be a password typed without its key.
			return o, fmt.Errorf("-e number %d: want KEY=VALUE (one of %s)", i+1, strings.Join(Settings, ", "))
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
			verify, err := forwarder.ParseBool(value)
			if err != nil {
				return o, fmt.Errorf("-e VERIFY_SSL=%s: %w", value, err)
			}
			o.InsecureSkipTLSVerify = !verify
		default:
			return o, fmt.Errorf("-e %s: not a setting of the phantom playbook (accepted: %s)", key, strings.Join(Settings, ", "))
		}
	}
	return o, nil
}

// NewCommand returns the playbook command with its deploy subcommand.
func NewCommand(kube *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "playbook",
		Short: "The original deploy_playbook command line (Kubeless)",
		Args:  cobra.NoArgs,
	}
	f := Flags{Runtime: install.RuntimeKubeless}
	var dryRun, wait bool
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns := install.DefaultNamespace
			if kube.Namespace != nil && *kube.Namespace != "" {
				ns = *kube.Namespace
			}
			o, err := Options(f, ns)
			if err != nil {
				return err
			}
			if o.PhantomAuth.Password != "" || o.PhantomAuth.Token != "" {
				fmt.Fprintln(streams.ErrOut, "warning: -e PHANTOM_PASSWORD/PHANTOM_TOKEN are visible in the process list; they are stored in a Secret, never in the Function")
			}
			o.DryRun, o.Wait = dryRun, wait
			return cmdinstall.Apply(cmd.Context(), kube, streams, o)
		},
	}
	fl := deploy.Flags()
	fl.StringVarP(&f.Playbook, "playbook", "p", "", "the playbook: phantom")
	fl.StringArrayVarP(&f.Env, "env", "e", nil, "a setting KEY=VALUE (repeatable): "+strings.Join(Settings, ", "))
	fl.StringArrayVarP(&f.Topics, "topic", "t", nil, "a NATS subject to trigger on (repeatable), e.g. falco.*.*")
	fl.StringVar(&f.NATSURL, "nats-url", "", "the NATS Falco publishes to (default: install NATS)")
	fl.StringVar(&f.Runtime, "runtime", f.Runtime, "kubeless (as the original) or default (a Deployment on NATS JetStream)")
	fl.BoolVar(&dryRun, "dry-run", false, "print what would be applied (secrets redacted)")
	fl.BoolVar(&wait, "wait", true, "wait for NATS to be ready when it is installed")
	cmd.AddCommand(deploy)
	return cmd
}
