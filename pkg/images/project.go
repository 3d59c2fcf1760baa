package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Where this project's images live, unless --image-registry says otherwise.
const (
	DefaultRegistry = "ghcr.io"
	ForwarderRepo   = "falco-phantom/falco-phantom-forwarder"
	MockPhantomRepo = "falco-phantom/mockphantom"
	ResponderRepo   = "falco-phantom/falco-phantom-responder"
	module          = "github.com/falco-phantom/kubectl-falco-phantom"
)

// Ref joins a registry (may be empty), a repository and a tag.
func Ref(registry, repo, tag string) string {
	if registry == "" {
		return repo + ":" + tag
	}
	return strings.TrimSuffix(registry, "/") + "/" + repo + ":" + tag
}

// Forwarder is the forwarder's image around its static binary.
func Forwarder(ref string, binary []byte, arch string) Spec {
	return Spec{
		Ref:        ref,
		Files:      append(BaseFiles(), File{Path: "/usr/local/bin/falco-phantom-forwarder", Data: binary, Mode: 0o755}),
		Entrypoint: []string{"/usr/local/bin/falco-phantom-forwarder"},
		User:       fmt.Sprintf("%d:%d", NonRoot, NonRoot),
		Ports:      []string{"8081/tcp"},
		Arch:       arch,
		Labels: map[string]string{
			"org.opencontainers.image.title":  "falco-phantom-forwarder",
			"org.opencontainers.image.source": "https://" + module,
		},
	}
}

// Responder is the responder's image around its static binary. Its
// certificate, key and token come from mounted Secrets; it writes nothing.
func Responder(ref string, binary []byte, arch string) Spec {
	return Spec{
		Ref:        ref,
		Files:      append(BaseFiles(), File{Path: "/usr/local/bin/falco-phantom-responder", Data: binary, Mode: 0o755}),
		Entrypoint: []string{"/usr/local/bin/falco-phantom-responder"},
		User:       fmt.Sprintf("%d:%d", NonRoot, NonRoot),
		Ports:      []string{"8443/tcp"},
		Arch:       arch,
		Labels: map[string]string{
			"org.opencontainers.image.title":  "falco-phantom-responder",
			"org.opencontainers.image.source": "https://" + module,
		},
	}
}

// MockPhantom is the mock SOAR server's image around its static binary.
func MockPhantom(ref string, binary []byte, arch string) Spec {
	return Spec{
		Ref: ref,
		Files: append(BaseFiles(),
			File{Path: "/usr/local/bin/mockphantom", Data: binary, Mode: 0o755},
			File{Path: "/data", Dir: true, Owner: NonRoot, Mode: 0o750}),
		Entrypoint: []string{"/usr/local/bin/mockphantom"},
		Cmd:        []string{"--listen=:8080", "--db=/data/soar.db"},
		User:       fmt.Sprintf("%d:%d", NonRoot, NonRoot),
		Ports:      []string{"8080/tcp"},
		Arch:       arch,
		Labels: map[string]string{
			"org.opencontainers.image.title":  "mockphantom",
			"org.opencontainers.image.source": "https://" + module,
		},
	}
}

// GoBuild compiles a main package of this module into a static binary for
// linux/arch, with the version stamped in. It needs the Go toolchain and
// runs in dir (the module root).
func GoBuild(ctx context.Context, dir, pkg, arch, version string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "falco-phantom-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X "+module+"/pkg/version.Version="+version, "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s for linux/%s: %w\n%s", pkg, arch, err, b)
	}
	return os.ReadFile(out)
}

// Project builds this project's images (forwarder, responder and mock SOAR) for
// linux/arch from the module in dir, tagged tag under registry.
func Project(ctx context.Context, dir, registry, tag, arch string) (map[string]v1.Image, error) {
	out := map[string]v1.Image{}
	for _, item := range []struct {
		pkg, repo string
		spec      func(string, []byte, string) Spec
	}{
		{"./cmd/falco-phantom-forwarder", ForwarderRepo, Forwarder},
		{"./cmd/falco-phantom-responder", ResponderRepo, Responder},
		{"./mockphantom/cmd/mockphantom", MockPhantomRepo, MockPhantom},
	} {
		bin, err := GoBuild(ctx, dir, item.pkg, arch, tag)
		if err != nil {
			return nil, err
		}
		ref := Ref(registry, item.repo, tag)
		img, err := Build(item.spec(ref, bin, arch))
		if err != nil {
			return nil, err
		}
		out[ref] = img
	}
	return out, nil
}
