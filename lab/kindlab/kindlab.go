// Package kindlab runs the whole shell-in-container flow on a kind cluster
// on a Linux machine with Docker: the cluster (configured as the Falco
// documentation asks for kind), this project's images loaded into its
// nodes, the real upstream Falco and NATS charts, the mock SOAR, and
// test-shell.
package kindlab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	"sigs.k8s.io/kind/pkg/log"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
)

// DefaultName is the name of the lab cluster.
const DefaultName = "falco-phantom-lab"

// MinMemory is the memory the lab needs free: a Kubernetes node, Falco,
// NATS, the forwarder and the mock.
const MinMemory = 4 << 30

// ClusterConfig is the kind configuration: one node with the host's /dev
// mounted, which is what the Falco documentation asks for on kind (Falco's
// driver needs the host's devices).
func ClusterConfig() *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Nodes: []v1alpha4.Node{{
			Role:        v1alpha4.ControlPlaneRole,
			ExtraMounts: []v1alpha4.Mount{{HostPath: "/dev", ContainerPath: "/dev"}},
		}},
	}
	v1alpha4.SetDefaultsCluster(cfg)
	return cfg
}

// Problem is a prerequisite that is not met, with what to do.
type Problem struct{ What, Fix string }

func (p Problem) Error() string { return p.What + ": " + p.Fix }

// Check checks the prerequisites before anything is created: a Linux host
// (Falco's driver runs in the host's kernel; Docker Desktop on macOS or
// Windows runs a VM kernel Falco does not support), a running Docker
// engine, and enough free memory. run executes a command (nil: os/exec).
func Check(ctx context.Context, goos string, meminfo io.Reader, run func(ctx context.Context, name string, args ...string) ([]byte, error)) []Problem {
	if run == nil {
		run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, name, args...).CombinedOutput()
		}
	}
	var out []Problem
	if goos != "linux" {
		out = append(out, Problem{"the lab needs a Linux host (this is " + goos + ")",
			"Falco's driver must run in the host's kernel; use a Linux machine or VM with Docker, or run `make demo` here"})
	}
	if b, err := run(ctx, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		switch {
		case errors.Is(err, exec.ErrNotFound):
			out = append(out, Problem{"Docker is not installed", "install Docker Engine (https://docs.docker.com/engine/install/), or run `make demo`, which needs no Docker"})
		default:
			out = append(out, Problem{"the Docker engine is not running or not reachable (" + firstLine(b) + ")",
				"start it (sudo systemctl start docker) and check that `docker info` works for this user"})
		}
	}
	if meminfo != nil {
		if avail, ok := memAvailable(meminfo); ok && avail < MinMemory {
			out = append(out, Problem{fmt.Sprintf("only %.1f GiB of memory available", float64(avail)/(1<<30)),
				fmt.Sprintf("the lab needs about %d GiB free: close other programs or use a bigger machine", MinMemory>>30)})
		}
	}
	return out
}

func memAvailable(r io.Reader) (uint64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return "no answer"
	}
	return s
}

// Lab is a kind cluster for the lab.
type Lab struct {
	Name       string
	Kubeconfig string
	provider   *cluster.Provider
}

// Up creates the cluster, or reuses it when it exists, and writes its
// kubeconfig to kubeconfigPath.
func Up(ctx context.Context, name, kubeconfigPath string, progress io.Writer) (*Lab, error) {
	p := cluster.NewProvider(cluster.ProviderWithLogger(logger{progress}))
	names, err := p.List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters: %w", err)
	}
	if slices.Contains(names, name) {
		fmt.Fprintf(progress, "• reusing kind cluster %s\n", name)
	} else {
		fmt.Fprintf(progress, "• creating kind cluster %s (a few minutes the first time: the node image is pulled)\n", name)
		err := p.Create(name, cluster.CreateWithV1Alpha4Config(ClusterConfig()), cluster.CreateWithWaitForReady(5*time.Minute),
			cluster.CreateWithKubeconfigPath(kubeconfigPath), cluster.CreateWithDisplayUsage(false), cluster.CreateWithDisplaySalutation(false))
		if err != nil {
			return nil, fmt.Errorf("create kind cluster %s: %w", name, err)
		}
	}
	kc, err := p.KubeConfig(name, false)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of %s: %w", name, err)
	}
	if err := os.WriteFile(kubeconfigPath, []byte(kc), 0o600); err != nil {
		return nil, fmt.Errorf("write kubeconfig: %w", err)
	}
	return &Lab{Name: name, Kubeconfig: kubeconfigPath, provider: p}, nil
}

// Down deletes the lab cluster; a missing one is fine.
func Down(name string, progress io.Writer) error {
	p := cluster.NewProvider(cluster.ProviderWithLogger(logger{progress}))
	names, err := p.List()
	if err != nil {
		return fmt.Errorf("list kind clusters: %w", err)
	}
	if !slices.Contains(names, name) {
		fmt.Fprintf(progress, "• no kind cluster %s: nothing to delete\n", name)
		return nil
	}
	fmt.Fprintf(progress, "• deleting kind cluster %s\n", name)
	return p.Delete(name, "")
}

// LoadStep is one image archive to load into one node.
type LoadStep struct {
	Node string
	Refs []string
}

// LoadPlan lists what to load where: every image into every node, the
// references sorted so that runs are repeatable.
func LoadPlan(nodes []string, refs []string) []LoadStep {
	sorted := slices.Clone(refs)
	slices.Sort(sorted)
	var plan []LoadStep
	for _, n := range nodes {
		plan = append(plan, LoadStep{Node: n, Refs: sorted})
	}
	return plan
}

// LoadImages loads images into every node of the lab, as `kind load` does.
func (l *Lab) LoadImages(imgs map[string]v1.Image, progress io.Writer) error {
	nodes, err := l.provider.ListInternalNodes(l.Name)
	if err != nil {
		return fmt.Errorf("nodes of %s: %w", l.Name, err)
	}
	byName := map[string]int{}
	var names []string
	for i, n := range nodes {
		byName[n.String()] = i
		names = append(names, n.String())
	}
	var refs []string
	for r := range imgs {
		refs = append(refs, r)
	}
	archive, err := os.CreateTemp("", "falco-phantom-images-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(archive.Name())
	archive.Close()
	if err := images.WriteArchive(archive.Name(), imgs); err != nil {
		return err
	}
	for _, step := range LoadPlan(names, refs) {
		fmt.Fprintf(progress, "• loading %s into node %s\n", strings.Join(step.Refs, ", "), step.Node)
		b, err := os.ReadFile(archive.Name())
		if err != nil {
			return err
		}
		if err := nodeutils.LoadImageArchive(nodes[byName[step.Node]], bytes.NewReader(b)); err != nil {
			return fmt.Errorf("load images into %s: %w", step.Node, err)
		}
	}
	return nil
}

// logger passes kind's messages on as progress lines.
type logger struct{ w io.Writer }

func (l logger) Warn(message string)               { fmt.Fprintln(l.w, "  kind: "+message) }
func (l logger) Warnf(format string, args ...any)  { fmt.Fprintf(l.w, "  kind: "+format+"\n", args...) }
func (l logger) Error(message string)              { fmt.Fprintln(l.w, "  kind: "+message) }
func (l logger) Errorf(format string, args ...any) { fmt.Fprintf(l.w, "  kind: "+format+"\n", args...) }
func (l logger) V(level log.Level) log.InfoLogger  { return infoLogger{l.w, level <= 0} }

type infoLogger struct {
	w       io.Writer
	enabled bool
}

func (i infoLogger) Info(message string) {
	if i.enabled {
		fmt.Fprintln(i.w, "  kind: "+message)
	}
}

func (i infoLogger) Infof(format string, args ...any) {
	if i.enabled {
		fmt.Fprintf(i.w, "  kind: "+format+"\n", args...)
	}
}
func (i infoLogger) Enabled() bool { return i.enabled }
