//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/lab/hostlab"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	falcostandin "github.com/falco-phantom/kubectl-falco-phantom/test/standin/falco"
)

// Variables that steer the suite.
const (
	// EnvRequire makes the suite fail, instead of skip, when the machine
	// cannot run the lab. CI sets it.
	EnvRequire = "FALCO_PHANTOM_REQUIRE_HOSTLAB"
	// EnvKeep leaves the cluster running after the tests.
	EnvKeep = "FALCO_PHANTOM_HOSTLAB_KEEP"
	// EnvReuse uses a lab that is already up instead of starting one.
	EnvReuse = "FALCO_PHANTOM_HOSTLAB_REUSE"
	// EnvTools is the folder of the Kubernetes binaries (build/tools/build.sh).
	EnvTools = "FALCO_PHANTOM_TOOLS_DIR"
	// EnvFalcoStandin runs the Falco stand-in even where the upstream
	// folder holds Falco (to try the stand-in's path).
	EnvFalcoStandin = "FALCO_PHANTOM_E2E_FALCO_STANDIN"
)

// Tags of this project's images in the lab: the install under test uses
// imageTag, the re-install upgrades to upgradeTag (the same images under
// another tag, so that the upgrade really replaces the pods).
const (
	imageTag   = "e2e"
	upgradeTag = "e2e-upgrade"
)

// env is what every test of the suite shares: the cluster, where the
// checkout is, and how the upstream parts run.
type env struct {
	cluster   *hostlab.Cluster
	moduleDir string
	toolsDir  string
	upstream  hostlab.Upstream
	// chartArgs are install's flags for the upstream charts on the lab
	// (hostlab.Cluster.InstallArgs).
	chartArgs []string
}

// realFalco tells whether the Falco container runs Falco (else the
// stand-in).
func (e *env) realFalco() bool { return !e.upstream.FalcoStandin }

var (
	lab      *env
	noLabWhy string
)

func TestMain(m *testing.M) {
	if hostlab.IsHelper() {
		os.Exit(hostlab.RunHelper(os.Args[1:]))
	}
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctx := context.Background()
	e, why, cleanup, err := setUp(ctx)
	code := run(m, e, why, err)
	if cleanup != nil {
		// A lab that cannot be torn down fails the suite: the next run
		// on this machine would start from its leftovers.
		if err := cleanup(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: FAIL: tearing the cluster down: %v\n", err)
			code = max(code, 1)
		}
	}
	return code
}

func run(m *testing.M, e *env, why string, err error) int {
	begin := time.Now()
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "e2e: cannot set up the cluster: %v\n", err)
		return 1
	case why != "" && os.Getenv(EnvRequire) != "":
		fmt.Fprintf(os.Stderr, "e2e: %s=1 and the end-to-end suite cannot run: %s\n", EnvRequire, why)
		return 1
	case why != "":
		fmt.Fprintf(os.Stderr, "e2e: SKIPPING the end-to-end suite: %s\n", why)
		noLabWhy = why
	default:
		lab = e
	}
	code := m.Run()
	if lab != nil {
		fmt.Fprintf(os.Stderr, "e2e: tests took %s\n", time.Since(begin).Round(100*time.Millisecond))
	}
	return code
}

// setUp builds the images, brings the lab up and returns it, or the reason
// the suite cannot run here. cleanup tears the lab down (it is set even
// when setUp fails half-way).
func setUp(ctx context.Context) (e *env, why string, cleanup func() error, err error) {
	begin := time.Now()
	defer func() {
		if e != nil && e.cluster != nil {
			fmt.Fprintf(os.Stderr, "e2e: cluster ready for the tests after %s\n", time.Since(begin).Round(100*time.Millisecond))
		}
	}()
	if runtime.GOOS != "linux" {
		return nil, "the hostlab runs on Linux only", nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, "not root: the hostlab runs containerd, a kubelet and iptables (run as root, e.g. in CI)", nil, nil
	}
	moduleDir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return nil, "", nil, err
	}
	e = &env{moduleDir: moduleDir}
	// The upstream charts, falcosidekick and (when present) Falco, from the
	// folder next to the checkout: the suite runs them, not stand-ins.
	e.upstream.Folder = images.UpstreamOf(moduleDir)
	if missing := e.upstream.Folder.Missing(); len(missing) > 0 {
		return nil, strings.Join(missing, "; "), nil, nil
	}
	e.upstream.FalcoStandin = !e.upstream.Folder.HasFalco() || os.Getenv(EnvFalcoStandin) != ""
	cfg := hostlab.Config{Log: os.Stderr, Timeout: 3 * time.Minute}
	if e.upstream.FalcoStandin {
		// The audit log is what the Falco stand-in follows.
		cfg.AuditPolicy = falcostandin.AuditPolicy
	}
	// The prerequisites that need no tools come first: building the
	// tools takes long the first time.
	if problems := hostlab.Check(cfg); len(problems) > 0 && !onlyTools(problems) {
		return nil, strings.Join(problems, "; "), nil, nil
	}
	e.toolsDir, err = toolsDir(ctx, moduleDir)
	if err != nil {
		return nil, "", nil, err
	}
	cfg.ToolsDir = e.toolsDir
	if problems := hostlab.Check(cfg); len(problems) > 0 {
		return nil, strings.Join(problems, "; "), nil, nil
	}
	release, err := hostlab.Lock(ctx, cfg.Dir, 30*time.Minute, os.Stderr)
	if err != nil {
		return nil, "", nil, err
	}
	archive, err := buildImages(ctx, moduleDir, e.upstream) // under the lock: its path is fixed
	if err != nil {
		release()
		return nil, "", nil, err
	}
	cleanup = func() error {
		os.Remove(archive)
		release()
		return nil
	}
	if os.Getenv(EnvReuse) != "" {
		c, err := hostlab.Load(ctx, cfg)
		if err != nil {
			return nil, "", cleanup, fmt.Errorf("%s=1: %w", EnvReuse, err)
		}
		if err := c.ImportImages(ctx, archive); err != nil {
			return nil, "", cleanup, err
		}
		fmt.Fprintf(os.Stderr, "e2e: using the running lab in %s (%s=1); it stays up\n", c.Dir, EnvReuse)
		e.cluster = c
		return e, "", cleanup, e.useUpstream(ctx)
	}
	cfg.Images = []string{archive}
	c, err := hostlab.Up(ctx, cfg)
	down := func() error {
		if os.Getenv(EnvKeep) != "" {
			fmt.Fprintf(os.Stderr, "e2e: %s=1: the cluster stays up: export KUBECONFIG=%s; stop it with: make hostlab-down\n",
				EnvKeep, filepath.Join(hostlab.DefaultDir, "admin.kubeconfig"))
			return nil
		}
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return hostlab.Down(dctx, cfg)
	}
	prev := cleanup
	cleanup = func() error { return errors.Join(down(), prev()) }
	if err != nil {
		return nil, "", cleanup, err
	}
	e.cluster = c
	return e, "", cleanup, e.useUpstream(ctx)
}

// useUpstream settles install's flags for the upstream charts on the lab,
// and says which Falco runs.
func (e *env) useUpstream(ctx context.Context) error {
	version, err := images.ModuleVersion(ctx, e.moduleDir, images.NATSServerModule)
	if err != nil {
		return err
	}
	e.upstream.NATSImage = images.NATSServerRef(version)
	if e.chartArgs, err = e.cluster.InstallArgs(e.upstream); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "e2e: the upstream charts %s and %s, falcosidekick %s (%s)\n",
		e.upstream.Folder.NATSChart(), e.upstream.Folder.FalcoChart(), images.FalcosidekickVersion, images.FalcosidekickRef)
	switch {
	case e.realFalco():
		fmt.Fprintf(os.Stderr, "e2e: Falco: the real Falco %s (%s, from %s), modern eBPF probe\n",
			images.FalcoVersion, images.FalcoRef, e.upstream.Folder.FalcoRootFS())
	case e.upstream.Folder.HasFalco():
		fmt.Fprintf(os.Stderr, "e2e: Falco: the STAND-IN (test/standin/falco, %s) in the Falco chart's DaemonSet, as %s=1 asks; it detects nothing, it reads the audit log\n",
			images.FalcoStandinRef, EnvFalcoStandin)
	default:
		fmt.Fprintf(os.Stderr, "e2e: Falco: the STAND-IN (test/standin/falco, %s) in the Falco chart's DaemonSet: %s is missing; it detects nothing, it reads the audit log\n",
			images.FalcoStandinRef, e.upstream.Folder.FalcoRootFS())
	}
	return nil
}

// onlyTools reports whether the only problem is the missing Kubernetes
// binaries (no tools folder was given yet).
func onlyTools(problems []string) bool {
	return len(problems) == 1 && strings.Contains(problems[0], "build/tools/build.sh")
}

// toolsDir returns the folder of the Kubernetes binaries: the one in
// FALCO_PHANTOM_TOOLS_DIR, or the one build/tools/build.sh builds and prints.
func toolsDir(ctx context.Context, moduleDir string) (string, error) {
	if dir := os.Getenv(EnvTools); dir != "" {
		return dir, nil
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(moduleDir, "build", "tools", "build.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build the Kubernetes binaries (build/tools/build.sh): %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// buildImages builds every image the tests run into one archive: this
// project's forwarder and mock SOAR (also under upgradeTag), NATS, the
// shell image, falcosidekick and Falco (or its stand-in).
func buildImages(ctx context.Context, moduleDir string, u hostlab.Upstream) (string, error) {
	begin := time.Now()
	imgs, err := images.Lab(ctx, images.LabOptions{ModuleDir: moduleDir, Tag: imageTag, Upstream: u.Folder, FalcoStandin: u.FalcoStandin,
		Progress: func(format string, args ...any) { fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...) }})
	if err != nil {
		return "", fmt.Errorf("build the images: %w", err)
	}
	all := map[string]v1.Image{}
	for ref, img := range imgs {
		all[ref] = img
	}
	for _, repo := range []string{images.ForwarderRepo, images.MockPhantomRepo} {
		img, ok := imgs[images.Ref(images.DefaultRegistry, repo, imageTag)]
		if !ok {
			return "", errors.New("images.Lab did not build " + repo)
		}
		all[images.Ref(images.DefaultRegistry, repo, upgradeTag)] = img
	}
	// One fixed place (the suite holds the lab's lock), so that a run
	// killed half-way leaves no archive behind for good.
	archive := filepath.Join(os.TempDir(), "falco-phantom-e2e-images.tar")
	if err := images.WriteArchive(archive, all); err != nil {
		os.Remove(archive)
		return "", err
	}
	fmt.Fprintf(os.Stderr, "e2e: %d image references in %s (%s)\n", len(all), archive, time.Since(begin).Round(100*time.Millisecond))
	return archive, nil
}

// needLab skips or fails t when the suite has no cluster, saying why.
func needLab(t *testing.T) *env {
	t.Helper()
	if lab == nil {
		t.Skip("no hostlab: " + noLabWhy)
	}
	return lab
}
