package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// EnvRequireAPIServer makes tests fail, instead of skip, when no API server
// binaries are available. `make test` (and so CI) sets it.
const EnvRequireAPIServer = "FALCO_PHANTOM_REQUIRE_ENVTEST"

// APIServer is a real kube-apiserver with etcd, started by envtest from the
// binaries in KUBEBUILDER_ASSETS (built by build/tools/build.sh). There is
// no kubelet or controller manager: objects are stored and validated, but
// no pod runs.
type APIServer struct {
	env *envtest.Environment
	dir string
	// Kubeconfig is an admin kubeconfig file (group system:masters).
	Kubeconfig string
	Kube       kubernetes.Interface
	Config     *rest.Config
}

// RunWithAPIServer is a test package's TestMain: it starts one API server
// for the whole package into *a (nil, with the reason in *why, when the
// binaries are missing and not required), runs the tests, stops the server
// and exits.
func RunWithAPIServer(m *testing.M, a **APIServer, why *string) {
	var err error
	*a, *why, err = StartAPIServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "API server:", err)
		os.Exit(1)
	}
	code := m.Run()
	(*a).Stop()
	os.Exit(code)
}

// StartAPIServer starts an API server for a whole test package (call it
// from TestMain). It returns nil and the reason when the binaries are
// missing and not required.
func StartAPIServer() (*APIServer, string, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		why := "KUBEBUILDER_ASSETS is not set: `make test` builds kube-apiserver and etcd and sets it"
		if os.Getenv(EnvRequireAPIServer) != "" {
			return nil, "", fmt.Errorf("%s", why)
		}
		return nil, why, nil
	}
	dir, err := os.MkdirTemp("", "falco-phantom-apiserver-")
	if err != nil {
		return nil, "", err
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	if _, err := env.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start API server from %s: %w", assets, err)
	}
	a := &APIServer{env: env, dir: dir}
	kc, err := a.KubeconfigFor("admin", "system:masters")
	if err != nil {
		a.Stop()
		return nil, "", err
	}
	a.Kubeconfig = kc
	user, err := env.AddUser(envtest.User{Name: "admin-client", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		a.Stop()
		return nil, "", err
	}
	a.Config = user.Config()
	a.Kube, err = kubernetes.NewForConfig(a.Config)
	if err != nil {
		a.Stop()
		return nil, "", err
	}
	return a, "", nil
}

// KubeconfigFor writes a kubeconfig of a user in groups and returns its path.
func (a *APIServer) KubeconfigFor(name string, groups ...string) (string, error) {
	user, err := a.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return "", fmt.Errorf("add user %s: %w", name, err)
	}
	b, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(a.dir, name+".kubeconfig")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// Stop stops the API server and etcd.
func (a *APIServer) Stop() {
	if a == nil {
		return
	}
	_ = a.env.Stop()
	os.RemoveAll(a.dir)
}

// Need skips or fails t when a is nil, saying why.
func Need(t *testing.T, a *APIServer, why string) {
	t.Helper()
	if a == nil {
		t.Skip("no API server: " + why)
	}
}
