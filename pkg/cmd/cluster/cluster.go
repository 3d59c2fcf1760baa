// Package cluster turns the standard kube flags into clients, with errors
// that say what to fix.
package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

// Cluster is a connection to the current context's cluster.
type Cluster struct {
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	APIExt  apiextclient.Interface
	Helm    helm.Client
	// Namespace is -n when given, else install.DefaultNamespace.
	Namespace string
	// Host is the API server address, for messages.
	Host string
}

// Connect builds the clients. It does not contact the cluster yet.
func Connect(flags *genericclioptions.ConfigFlags) (*Cluster, error) {
	// With no kubeconfig at all, client-go quietly falls back to
	// http://localhost:8080, and the user would see "connection refused".
	if raw, err := flags.ToRawKubeConfigLoader().RawConfig(); err == nil && len(raw.Contexts) == 0 &&
		(flags.APIServer == nil || *flags.APIServer == "") && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, errNoConfig
	}
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, explain(err)
	}
	cfg.WarningHandler = rest.NoWarnings{}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	ext, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	ns := install.DefaultNamespace
	if flags.Namespace != nil && *flags.Namespace != "" {
		ns = *flags.Namespace
	}
	return &Cluster{Config: cfg, Kube: kube, Dynamic: dyn, APIExt: ext, Helm: helm.New(flags, nil), Namespace: ns, Host: cfg.Host}, nil
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

// Installer is an installer on this cluster, printing progress to w.
func (c *Cluster) Installer(w io.Writer) *install.Installer {
	return &install.Installer{Helm: c.Helm, Kube: c.Kube, Dynamic: c.Dynamic, APIExt: c.APIExt, Progress: w}
}
