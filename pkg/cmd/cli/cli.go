// Package cli is what the plugin's cluster commands share: their
// surroundings (streams, environment and kube flags), the namespace they
// work in, and the connection to the cluster.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

// Env is what a command is handed: the kube flags of the command line, its
// streams, and the environment (os.Getenv outside tests).
type Env struct {
	Kube    *genericclioptions.ConfigFlags
	Streams genericiooptions.IOStreams
	Getenv  func(string) string
}

// Namespace is the namespace given with -n, or install's default.
func (e *Env) Namespace() string { return e.NamespaceOr(install.DefaultNamespace) }

// NamespaceOr is the namespace given with -n, or def.
func (e *Env) NamespaceOr(def string) string {
	if e.Kube.Namespace != nil && *e.Kube.Namespace != "" {
		return *e.Kube.Namespace
	}
	return def
}

// Cluster is a connection to the current context's cluster.
type Cluster struct {
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	APIExt  apiextclient.Interface
	Helm    helm.Client
	// Host is the API server address, for messages.
	Host string
}

// Connect builds the clients and checks that the API server answers. Its
// errors are one line saying what to fix.
func (e *Env) Connect(ctx context.Context) (*Cluster, error) {
	flags := e.Kube
	// With no kubeconfig at all, client-go quietly falls back to
	// http://localhost:8080, and the user would see "connection refused".
	if raw, err := flags.ToRawKubeConfigLoader().RawConfig(); err == nil && len(raw.Contexts) == 0 &&
		(flags.APIServer == nil || *flags.APIServer == "") && e.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, errNoConfig
	}
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, explain(err)
	}
	cfg.WarningHandler = rest.NoWarnings{}
	c := &Cluster{Config: cfg, Helm: helm.New(flags, nil), Host: cfg.Host}
	if c.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if c.APIExt, err = apiextclient.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	reach, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.Kube.Discovery().RESTClient().Get().AbsPath("/version").Do(reach).Error(); err != nil {
		return nil, &UnreachableError{Host: c.Host, Err: err}
	}
	return c, nil
}

// UnreachableError says the API server did not answer.
type UnreachableError struct {
	Host string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s: cannot reach the cluster: %v (check --context/--kubeconfig and that the API server is up)", e.Host, oneLine(e.Err.Error()))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ExitUnreachable is the exit code of every command when the cluster
// cannot be reached, so that scripts can tell it from a failed check.
const ExitUnreachable = 5

// ExitCode is ExitUnreachable.
func (e *UnreachableError) ExitCode() int { return ExitUnreachable }

// Installer is an installer on this cluster, printing progress to w.
func (c *Cluster) Installer(w io.Writer) *install.Installer {
	return &install.Installer{Helm: c.Helm, Kube: c.Kube, Dynamic: c.Dynamic, APIExt: c.APIExt, Progress: w}
}

var errNoConfig = errors.New("no cluster configured: no kubeconfig found; set --kubeconfig or KUBECONFIG, or create ~/.kube/config (kind and most installers write it)")

// explain maps kubeconfig errors to one line saying what to fix.
func explain(err error) error {
	switch {
	case clientcmd.IsEmptyConfig(err):
		return errNoConfig
	case strings.Contains(err.Error(), "context was not found"):
		return fmt.Errorf("%v: list the contexts with: kubectl config get-contexts", err)
	case clientcmd.IsConfigurationInvalid(err):
		return fmt.Errorf("invalid kubeconfig: %v", err)
	}
	return fmt.Errorf("kubeconfig: %w", err)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
