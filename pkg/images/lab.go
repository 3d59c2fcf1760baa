package images

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Images the lab and the end-to-end tests need besides this project's
// own: a NATS server, a small shell image and a pause image (and those
// built from the upstream folder: upstream.go). Like the project's images,
// each is one layer, built without Docker.
const (
	NATSServerRepo = "falco-phantom/nats-server"
	ShellRepo      = "falco-phantom/shell"
	PauseRepo      = "falco-phantom/pause"
	// NATSServerModule is the Go module whose root package is nats-server.
	NATSServerModule = "github.com/nats-io/nats-server/v2"
)

// NATSServer is an image of nats-server around its static binary, running
// as non-root with its JetStream store in /data.
func NATSServer(ref string, binary []byte, arch string) Spec {
	return Spec{
		Ref: ref,
		Files: append(BaseFiles(),
			File{Path: "/usr/local/bin/nats-server", Data: binary, Mode: 0o755},
			File{Path: "/data", Dir: true, Owner: NonRoot, Mode: 0o750}),
		Entrypoint: []string{"/usr/local/bin/nats-server"},
		User:       fmt.Sprintf("%d:%d", NonRoot, NonRoot),
		Ports:      []string{"4222/tcp", "6222/tcp", "8222/tcp"},
		Arch:       arch,
		Labels:     map[string]string{"org.opencontainers.image.title": "nats-server"},
	}
}

// Shell is a small image with a shell and the usual tools: a static
// busybox with one link per applet in /bin. It runs as root, like most
// images people open a shell in.
func Shell(ref string, busybox []byte, applets []string, arch string) Spec {
	files := append(BaseFiles(), File{Path: "/bin/busybox", Data: busybox, Mode: 0o755})
	for _, a := range applets {
		if a == "" || a == "busybox" || strings.ContainsRune(a, '/') {
			continue
		}
		files = append(files, File{Path: "/bin/" + a, Link: "busybox"})
	}
	return Spec{
		Ref:        ref,
		Files:      files,
		Entrypoint: []string{"/bin/sh"},
		Env:        []string{"PATH=/bin"},
		Arch:       arch,
		Labels:     map[string]string{"org.opencontainers.image.title": "shell"},
	}
}

// Pause is a pod sandbox image: its only process sleeps until it is
// killed (the container runtime stops sandboxes with SIGKILL).
func Pause(ref string, busybox []byte, arch string) Spec {
	return Spec{
		Ref: ref,
		Files: []File{
			{Path: "/bin/busybox", Data: busybox, Mode: 0o755},
			{Path: "/bin/sleep", Link: "busybox"},
		},
		Entrypoint: []string{"/bin/sleep", "2147483647"},
		Arch:       arch,
		Labels:     map[string]string{"org.opencontainers.image.title": "pause"},
	}
}

// ReadBusybox reads a busybox binary, checks that it is static (it runs in
// images that hold nothing else; Debian's busybox-static package has one)
// and lists its applets.
func ReadBusybox(ctx context.Context, path string) (binary []byte, applets []string, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("busybox %s: %w (install the Debian package busybox-static)", path, err)
	}
	dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
	f.Close()
	if dynamic {
		return nil, nil, fmt.Errorf("busybox %s is not a static binary: install the Debian package busybox-static", path)
	}
	binary, err = os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	out, err := exec.CommandContext(ctx, path, "--list").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("%s --list: %w", path, err)
	}
	return binary, strings.Fields(string(out)), nil
}

// ShellRef is the reference of the shell image.
var ShellRef = Ref(DefaultRegistry, ShellRepo, "lab")

// NATSServerRef is the reference of the NATS server image: its tag is the
// nats-server version this module requires (e.g. 2.15.2).
func NATSServerRef(version string) string {
	return Ref(DefaultRegistry, NATSServerRepo, strings.TrimPrefix(version, "v"))
}

// LabOptions says what Lab builds.
type LabOptions struct {
	// ModuleDir is the root of this module's checkout.
	ModuleDir string
	// Tag of the project's images (forwarder, responder and mock SOAR).
	Tag string
	// Busybox is a static busybox binary; default /bin/busybox.
	Busybox string
	// Arch defaults to this machine's.
	Arch string
	// Upstream, when its Dir is set, is the folder of third-party parts:
	// Lab then also builds falcosidekick, and Falco when the folder holds
	// it (else the Falco stand-in). Only linux/amd64 binaries are there.
	Upstream Upstream
	// FalcoStandin builds the Falco stand-in even when the folder holds
	// Falco.
	FalcoStandin bool
	// Progress receives one line per step; nil discards them.
	Progress func(format string, args ...any)
}

// Lab builds every image a lab cluster runs the pipeline with, by
// reference: this project's forwarder, responder and mock SOAR (exactly as Project
// builds them for users), a NATS server built from the nats-server module
// this module requires and the shell image; with an upstream folder also
// falcosidekick (FalcosidekickRef) and either Falco (FalcoRef) or the
// Falco stand-in (FalcoStandinRef).
func Lab(ctx context.Context, o LabOptions) (map[string]v1.Image, error) {
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if o.Busybox == "" {
		o.Busybox = "/bin/busybox"
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	begin := time.Now()
	out, err := Project(ctx, o.ModuleDir, DefaultRegistry, o.Tag, o.Arch)
	if err != nil {
		return nil, err
	}
	progress("built the forwarder, responder and mock SOAR images %s in %s", o.Tag, time.Since(begin).Round(100*time.Millisecond))
	begin = time.Now()
	natsVersion, err := ModuleVersion(ctx, o.ModuleDir, NATSServerModule)
	if err != nil {
		return nil, err
	}
	natsBin, err := GoBuild(ctx, o.ModuleDir, NATSServerModule, o.Arch, o.Tag)
	if err != nil {
		return nil, err
	}
	busybox, applets, err := ReadBusybox(ctx, o.Busybox)
	if err != nil {
		return nil, err
	}
	if err := add(out, NATSServer(NATSServerRef(natsVersion), natsBin, o.Arch), Shell(ShellRef, busybox, applets, o.Arch)); err != nil {
		return nil, err
	}
	progress("built the NATS server %s and shell images in %s", natsVersion, time.Since(begin).Round(100*time.Millisecond))
	if o.Upstream.Dir == "" {
		return out, nil
	}
	if err := upstreamImages(ctx, o, out, progress); err != nil {
		return nil, err
	}
	return out, nil
}

// upstreamImages adds the images built from the upstream folder.
func upstreamImages(ctx context.Context, o LabOptions, out map[string]v1.Image, progress func(string, ...any)) error {
	if o.Arch != "amd64" {
		return fmt.Errorf("the upstream folder %s holds linux/amd64 binaries only, not %s", o.Upstream.Dir, o.Arch)
	}
	begin := time.Now()
	sidekick, err := o.Upstream.ReadFalcosidekick(ctx)
	if err != nil {
		return err
	}
	if err := add(out, Falcosidekick(FalcosidekickRef, sidekick, o.Arch)); err != nil {
		return err
	}
	progress("built %s from %s (sha256 checked) in %s", FalcosidekickRef, o.Upstream.FalcosidekickArchive(), time.Since(begin).Round(100*time.Millisecond))
	begin = time.Now()
	if o.FalcoStandin || !o.Upstream.HasFalco() {
		bin, err := GoBuild(ctx, o.ModuleDir, "./test/standin/falco/cmd/falco-standin", o.Arch, o.Tag)
		if err != nil {
			return err
		}
		if err := add(out, FalcoStandin(FalcoStandinRef, bin, o.Arch)); err != nil {
			return err
		}
		progress("built the Falco stand-in %s in %s", FalcoStandinRef, time.Since(begin).Round(100*time.Millisecond))
		return nil
	}
	rootfs, err := o.Upstream.ReadFalco(ctx)
	if err != nil {
		return err
	}
	if err := add(out, Falco(FalcoRef, rootfs, o.Arch)); err != nil {
		return err
	}
	progress("built %s from %s (sha256 of /usr/bin/falco checked) in %s", FalcoRef, o.Upstream.FalcoRootFS(), time.Since(begin).Round(100*time.Millisecond))
	return nil
}

// add builds the images of specs into out.
func add(out map[string]v1.Image, specs ...Spec) error {
	for _, spec := range specs {
		img, err := Build(spec)
		if err != nil {
			return err
		}
		out[spec.Ref] = img
	}
	return nil
}

// ModuleVersion returns the version of a module that the module in
// moduleDir requires.
func ModuleVersion(ctx context.Context, moduleDir, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", module)
	cmd.Dir = moduleDir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	return strings.TrimSpace(string(out)), nil
}
