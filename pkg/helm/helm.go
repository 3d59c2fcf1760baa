// Package helm is the only place that calls the Helm SDK. Everything else
// uses the small Client interface, so that moving from Helm v3 (out of
// support since 2026-11-11) to helm.sh/helm/v4 changes this package alone.
package helm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// Chart says where a chart comes from: exactly one of Files, or Ref.
type Chart struct {
	// Ref is a chart name in RepoURL, a local path (folder or .tgz), or an
	// oci:// reference.
	Ref string
	// RepoURL is the chart repository, for a chart name.
	RepoURL string
	// Version pins the chart version; empty takes the newest.
	Version string
	// Files is a chart compiled into the binary: the folder holding Chart.yaml.
	Files fs.FS
}

// String names the chart for messages.
func (c Chart) String() string {
	switch {
	case c.Files != nil:
		return "built-in chart"
	case c.RepoURL != "":
		return fmt.Sprintf("chart %s %s from %s", c.Ref, c.Version, c.RepoURL)
	default:
		return "chart " + c.Ref
	}
}

// Request is a release to render or apply.
type Request struct {
	Name      string
	Namespace string
	Chart     Chart
	Values    map[string]any
	// Timeout bounds Helm's own operations (not readiness: callers wait
	// for that themselves, with progress).
	Timeout time.Duration
}

// Release is a deployed release.
type Release struct {
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	Chart        string `json:"chart"`
	ChartVersion string `json:"chartVersion"`
	AppVersion   string `json:"appVersion"`
	Status       string `json:"status"`
	Revision     int    `json:"revision"`
	// Manifest holds the rendered objects, YAML documents separated by ---.
	Manifest string    `json:"-"`
	Updated  time.Time `json:"updated"`
}

// Client is what the rest of the project may ask of Helm.
type Client interface {
	// Render returns the manifests Apply would send, without a cluster.
	Render(ctx context.Context, req Request) (string, error)
	// Apply installs the release, or upgrades it in place when it exists.
	Apply(ctx context.Context, req Request) (*Release, error)
	// Get returns the release, or nil when there is none.
	Get(ctx context.Context, name, namespace string) (*Release, error)
	// Uninstall removes the release; a missing release is not an error.
	Uninstall(ctx context.Context, name, namespace string) error
}

// New returns a Client working on the cluster getter points at. logf
// receives Helm's debug messages (it may be nil).
func New(getter genericclioptions.RESTClientGetter, logf func(format string, args ...any)) Client {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &sdk{getter: getter, logf: logf, settings: cli.New(), located: map[string]string{}}
}

type sdk struct {
	getter   genericclioptions.RESTClientGetter
	logf     func(string, ...any)
	settings *cli.EnvSettings
	// located remembers where each chart was downloaded to, so that a
	// chart rendered (by install's preflight) and then applied is fetched
	// once. Charts are loaded afresh each time: Helm changes a loaded
	// chart while it installs it.
	mu      sync.Mutex
	located map[string]string
}

func (s *sdk) config(namespace string) (*action.Configuration, error) {
	cfg := new(action.Configuration)
	if err := cfg.Init(s.getter, namespace, "secret", s.logf); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	// Objects without a namespace go to the release's, as with `helm -n`
	// (Init leaves the kube client on the kubeconfig's namespace).
	if kc, ok := cfg.KubeClient.(*kube.Client); ok {
		kc.Namespace = namespace
	}
	reg, err := registry.NewClient(registry.ClientOptCredentialsFile(s.settings.RegistryConfig), registry.ClientOptEnableCache(true))
	if err != nil {
		return nil, fmt.Errorf("helm registry client: %w", err)
	}
	cfg.RegistryClient = reg
	return cfg, nil
}

// load finds and loads a chart.
func (s *sdk) load(cfg *action.Configuration, c Chart) (*chart.Chart, error) {
	if c.Files != nil {
		return loadFS(c.Files)
	}
	key := c.RepoURL + "\x00" + c.Ref + "\x00" + c.Version
	s.mu.Lock()
	where, ok := s.located[key]
	s.mu.Unlock()
	if !ok {
		// An Install action carries the registry client into chart lookup.
		locate := action.NewInstall(cfg)
		locate.RepoURL, locate.Version = c.RepoURL, c.Version
		var err error
		if where, err = locate.LocateChart(c.Ref, s.settings); err != nil {
			return nil, fmt.Errorf("cannot get %s: %w", c, err)
		}
		s.mu.Lock()
		s.located[key] = where
		s.mu.Unlock()
	}
	ch, err := loader.Load(where)
	if err != nil {
		return nil, fmt.Errorf("cannot load %s: %w", c, err)
	}
	return ch, nil
}

// loadFS loads a chart from a file system whose root holds Chart.yaml.
func loadFS(fsys fs.FS) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: path.Clean(p), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read built-in chart: %w", err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load built-in chart: %w", err)
	}
	return ch, nil
}

func (s *sdk) Render(ctx context.Context, req Request) (string, error) {
	cfg := &action.Configuration{}
	// A client-only render needs no cluster, only a registry client for
	// oci:// charts.
	reg, err := registry.NewClient(registry.ClientOptCredentialsFile(s.settings.RegistryConfig))
	if err != nil {
		return "", fmt.Errorf("helm registry client: %w", err)
	}
	cfg.RegistryClient = reg
	ch, err := s.load(cfg, req.Chart)
	if err != nil {
		return "", err
	}
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace = req.Name, req.Namespace
	inst.DryRun, inst.ClientOnly, inst.Replace, inst.IncludeCRDs = true, true, true, true
	inst.KubeVersion = &chartutil.KubeVersion{Version: "v1.37.0", Major: "1", Minor: "37"}
	rel, err := inst.RunWithContext(ctx, ch, req.Values)
	if err != nil {
		return "", fmt.Errorf("render %s: %w", req.Name, err)
	}
	return manifestWithHooks(rel.Manifest, rel.Hooks), nil
}

func (s *sdk) Apply(ctx context.Context, req Request) (*Release, error) {
	cfg, err := s.config(req.Namespace)
	if err != nil {
		return nil, err
	}
	ch, err := s.load(cfg, req.Chart)
	if err != nil {
		return nil, err
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	hist := action.NewHistory(cfg)
	hist.Max = 1
	_, err = hist.Run(req.Name)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
		inst := action.NewInstall(cfg)
		inst.ReleaseName, inst.Namespace, inst.Timeout = req.Name, req.Namespace, timeout
		rel, err := inst.RunWithContext(ctx, ch, req.Values)
		if err != nil {
			return nil, fmt.Errorf("install release %s: %w", req.Name, err)
		}
		return convert(rel), nil
	case err != nil:
		return nil, fmt.Errorf("read history of release %s: %w", req.Name, err)
	}
	up := action.NewUpgrade(cfg)
	up.Namespace, up.Timeout, up.MaxHistory = req.Namespace, timeout, 10
	rel, err := up.RunWithContext(ctx, req.Name, ch, req.Values)
	if err != nil {
		return nil, fmt.Errorf("upgrade release %s: %w", req.Name, err)
	}
	return convert(rel), nil
}

func (s *sdk) Get(_ context.Context, name, namespace string) (*Release, error) {
	cfg, err := s.config(namespace)
	if err != nil {
		return nil, err
	}
	rel, err := action.NewGet(cfg).Run(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get release %s: %w", name, err)
	}
	return convert(rel), nil
}

func (s *sdk) Uninstall(_ context.Context, name, namespace string) error {
	cfg, err := s.config(namespace)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.Timeout = 5 * time.Minute
	un.IgnoreNotFound = true
	if _, err := un.Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstall release %s: %w", name, err)
	}
	return nil
}

func convert(rel *release.Release) *Release {
	r := &Release{Name: rel.Name, Namespace: rel.Namespace, Revision: rel.Version, Manifest: manifestWithHooks(rel.Manifest, rel.Hooks)}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		r.Chart, r.ChartVersion, r.AppVersion = rel.Chart.Metadata.Name, rel.Chart.Metadata.Version, rel.Chart.Metadata.AppVersion
	}
	if rel.Info != nil {
		r.Status = rel.Info.Status.String()
		r.Updated = rel.Info.LastDeployed.Time
	}
	return r
}

// manifestWithHooks appends the hook manifests, so that a dry run shows
// every object an install creates. Test hooks are left out: only helm
// test creates them (the falcosidekick chart has one, a Pod of a Docker
// Hub image that an offline install must not be told to mirror).
func manifestWithHooks(manifest string, hooks []*release.Hook) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(manifest))
	for _, h := range hooks {
		if testHook(h) {
			continue
		}
		b.WriteString("\n---\n# Source: ")
		b.WriteString(h.Path)
		b.WriteString(" (hook: ")
		for i, e := range h.Events {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(string(e))
		}
		b.WriteString(")\n")
		b.WriteString(strings.TrimSpace(h.Manifest))
	}
	return b.String()
}

// SetValues applies --set style assignments ("a.b=c", lists with commas,
// a[0]=x) onto values, the way `helm --set` does.
func SetValues(values map[string]any, assignments []string) error {
	for _, a := range assignments {
		if err := strvals.ParseInto(a, values); err != nil {
			return fmt.Errorf("--set %q: %w", a, err)
		}
	}
	return nil
}

// testHook tells whether a hook runs on helm test only.
func testHook(h *release.Hook) bool {
	for _, e := range h.Events {
		if e != release.HookTest {
			return false
		}
	}
	return len(h.Events) > 0
}
