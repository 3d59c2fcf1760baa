// Package responder is the command line of the falco-phantom-responder
// service.
package responder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/responder"
)

// Run runs the responder command line with args (without the program name).
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	return cmdmain.Execute(ctx, NewCommand(streams.Out, streams.ErrOut, getenv), args)
}

type options struct {
	cfg        responder.Config
	kubeconfig string
	logFormat  string
	logLevel   string
}

// NewCommand returns the responder's root command.
func NewCommand(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	o := &options{cfg: responder.Defaults()}
	var finish func() error
	cmd := &cobra.Command{
		Use:   "falco-phantom-responder",
		Short: "Serve the response actions to SOAR playbooks over HTTPS",
		Long: `Serve the response actions (isolate, release, label, annotate, terminate,
cordon, uncordon, describe) to SOAR playbooks: POST /v1/actions/<action> with
a bearer token and a JSON body, as docs/respond.md describes. Actions happen
only in the allowed namespaces (never in POD_NAMESPACE or kube-system unless
named), only the allowed ones, each audited in the log and, when the request
names a case, noted into that SOAR case.

Secrets are read from files or the environment only: the bearer token
(--token-file), the TLS key, and SOAR's credentials (PHANTOM_USER,
PHANTOM_PASSWORD, PHANTOM_TOKEN, or PHANTOM_*_FILE).
Every flag can also be set with the variable named in its help.`,
		Example: `  # in the cluster, as the chart runs it
  RESPONDER_NAMESPACES='*' POD_NAMESPACE=falco-phantom falco-phantom-responder \
      --tls-cert-file /etc/falco-phantom/tls/tls.crt --tls-key-file /etc/falco-phantom/tls/tls.key \
      --token-file /etc/falco-phantom/token/token --phantom-url https://soar.example.com \
      --phantom-token-file /etc/falco-phantom/soar/token

  # on a workstation, against the current kubeconfig, without SOAR notes
  falco-phantom-responder --kubeconfig ~/.kube/config --namespaces shop,web --listen 127.0.0.1:8443 \
      --tls-cert-file tls.crt --tls-key-file tls.key --token-file token`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := finish(); err != nil {
				return err
			}
			return o.run(cmd.Context(), stderr)
		},
	}
	cmdmain.SetVersion(cmd, "falco-phantom-responder")
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	finish = bindFlags(&o.cfg, cmd.Flags(), getenv)
	fs := cmd.Flags()
	fs.StringVar(&o.kubeconfig, "kubeconfig", getenv("KUBECONFIG"), "kubeconfig to act with outside a cluster; in a pod, its service account [KUBECONFIG]")
	fs.StringVar(&o.logFormat, "log-format", input.Env(getenv, "LOG_FORMAT", "json"), "log format: json or text [LOG_FORMAT]")
	fs.StringVar(&o.logLevel, "log-level", input.Env(getenv, "LOG_LEVEL", "info"), "log level: debug, info, warn, error [LOG_LEVEL]")
	return cmd
}

func (o *options) run(ctx context.Context, stderr io.Writer) error {
	log, err := logger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	if err := o.cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	kube, err := o.kube()
	if err != nil {
		return err
	}
	srv, err := responder.New(o.cfg, kube, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// kube is a client acting with the pod's service account, or with
// --kubeconfig.
func (o *options) kube() (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if o.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, errors.New("not in a pod: give --kubeconfig to act outside a cluster")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("Kubernetes client: %w", err)
	}
	cfg.UserAgent = "falco-phantom-responder"
	return kubernetes.NewForConfig(cfg)
}

func logger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", format)
}
