package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// The lab runs some third-party parts for real: the upstream NATS and
// Falco charts, falcosidekick and Falco, from a folder next to the
// checkout (../shared/upstream; its README says where each comes from and
// how it was built). Nothing of it is part of this repository: the images
// below are built from those files when a lab starts.
const (
	// UpstreamDirName is that folder, relative to the module root.
	UpstreamDirName = "../shared/upstream"

	FalcosidekickRepo = "falco-phantom/falcosidekick"
	// FalcosidekickVersion is the falcosidekick the folder holds; the
	// image carries it as its tag.
	FalcosidekickVersion = "2.34.1"
	FalcoRepo            = "falco-phantom/falco"
	// FalcoVersion is the Falco the folder holds, built from source.
	FalcoVersion = "0.40.0"
	// FalcoStandinRepo is test/standin/falco's image: it takes the Falco
	// container's place where the folder holds no Falco.
	FalcoStandinRepo = "falco-phantom/falco-standin"
	// FalcoMemlockShim must be preloaded into Falco on machines that refuse
	// to raise RLIMIT_MEMLOCK (see the folder's README).
	FalcoMemlockShim = "/usr/lib/falco-lab/memlock-shim.so"

	// sha256 of the binaries, as the folder's README gives them: an image
	// is only built from the files it describes.
	falcosidekickSHA256 = "dc8136e1b3c4c49024419258f058efbd970de674e5544df03bb643571bc6021f"
	falcoBinarySHA256   = "da55c899ba352f7572ab4af4bd64da4cb5f4e5e5268f7c6b9b18dfd46c3e3172"
)

// References of the images built from the upstream folder.
var (
	FalcosidekickRef = Ref(DefaultRegistry, FalcosidekickRepo, FalcosidekickVersion)
	FalcoRef         = Ref(DefaultRegistry, FalcoRepo, FalcoVersion)
	FalcoStandinRef  = Ref(DefaultRegistry, FalcoStandinRepo, "lab")
)

// Upstream is the folder of third-party parts.
type Upstream struct{ Dir string }

// UpstreamOf is the folder next to the checkout at moduleDir.
func UpstreamOf(moduleDir string) Upstream {
	return Upstream{Dir: filepath.Clean(filepath.Join(moduleDir, UpstreamDirName))}
}

// NATSChart is the NATS Helm chart 2.14.2, as published.
func (u Upstream) NATSChart() string { return filepath.Join(u.Dir, "charts", "nats-2.14.2.tgz") }

// FalcoChart is the Falco Helm chart 9.1.0 with its subcharts.
func (u Upstream) FalcoChart() string { return filepath.Join(u.Dir, "charts", "falco-9.1.0.tgz") }

// FalcosidekickArchive is falcosidekick's static binary, xz-compressed.
func (u Upstream) FalcosidekickArchive() string {
	return filepath.Join(u.Dir, "falcosidekick", "falcosidekick-"+FalcosidekickVersion+"-linux-amd64.xz")
}

// FalcoRootFS is Falco's root file system, an xz-compressed tarball; the
// folder may not hold it.
func (u Upstream) FalcoRootFS() string {
	return filepath.Join(u.Dir, "falco", "falco-"+FalcoVersion+"-rootfs.tar.xz")
}

// HasFalco tells whether the folder holds Falco.
func (u Upstream) HasFalco() bool {
	_, err := os.Stat(u.FalcoRootFS())
	return err == nil
}

// Missing lists what the lab needs from the folder and does not find: the
// two charts and falcosidekick (Falco is optional: a stand-in takes its
// place), each as one line.
func (u Upstream) Missing() []string {
	var out []string
	for _, f := range []string{u.NATSChart(), u.FalcoChart(), u.FalcosidekickArchive()} {
		if _, err := os.Stat(f); err != nil {
			out = append(out, fmt.Sprintf("%s is missing (the upstream parts live next to the checkout, in %s)", f, UpstreamDirName))
		}
	}
	return out
}

// Falcosidekick is an image of falcosidekick's static binary, laid out as
// falcosidekick's published image is (/app/falcosidekick, run as user
// 1234, the user its chart runs it as).
func Falcosidekick(ref string, binary []byte, arch string) Spec {
	const uid = 1234
	files := []File{
		{Path: "/etc/passwd", Data: fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nfalcosidekick:x:%d:%d:falcosidekick:/app:/sbin/nologin\n", uid, uid)},
		{Path: "/etc/group", Data: fmt.Appendf(nil, "root:x:0:\nfalcosidekick:x:%d:\n", uid)},
		{Path: "/app", Dir: true, Owner: uid},
		{Path: "/app/falcosidekick", Data: binary, Mode: 0o755},
		{Path: "/tmp", Dir: true, Mode: 0o1777},
	}
	for _, f := range BaseFiles() {
		if f.Path == "/etc/ssl/certs/ca-certificates.crt" {
			files = append(files, f)
		}
	}
	return Spec{
		Ref:        ref,
		Files:      files,
		Entrypoint: []string{"/app/falcosidekick"},
		WorkingDir: "/app",
		User:       fmt.Sprintf("%d:%d", uid, uid),
		Ports:      []string{"2801/tcp"},
		Arch:       arch,
		Labels: map[string]string{
			"org.opencontainers.image.title":   "falcosidekick",
			"org.opencontainers.image.version": FalcosidekickVersion,
			"org.opencontainers.image.source":  "https://github.com/falcosecurity/falcosidekick",
		},
	}
}

// Falco is an image of Falco's root file system. It has no entrypoint:
// the Falco chart gives the command (/usr/bin/falco and its options).
// Besides the root file system's files it holds the folders the chart's
// configuration names and an official image has (/etc/falco/config.d,
// /etc/falco/rules.d, an empty falco_rules.local.yaml).
func Falco(ref string, rootfs []File, arch string) Spec {
	files := append([]File{}, rootfs...)
	have := map[string]bool{}
	for _, f := range files {
		have[path.Clean(f.Path)] = true
	}
	for _, f := range []File{
		{Path: "/etc/falco/config.d", Dir: true},
		{Path: "/etc/falco/rules.d", Dir: true},
		{Path: "/etc/falco/falco_rules.local.yaml", Data: []byte("# Local rules: none in the lab.\n")},
		{Path: "/root/.falco", Dir: true, Mode: 0o700},
	} {
		if !have[f.Path] {
			files = append(files, f)
		}
	}
	return Spec{
		Ref:   ref,
		Files: files,
		Cmd:   []string{"/usr/bin/falco"},
		Env:   []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Arch:  arch,
		Labels: map[string]string{
			"org.opencontainers.image.title":   "falco",
			"org.opencontainers.image.version": FalcoVersion,
			"org.opencontainers.image.source":  "https://github.com/falcosecurity/falco",
		},
	}
}

// FalcoStandin is the image of test/standin/falco's command: it is run
// with the Falco chart's command line, which it ignores.
func FalcoStandin(ref string, binary []byte, arch string) Spec {
	return Spec{
		Ref:        ref,
		Files:      append(BaseFiles(), File{Path: "/usr/local/bin/falco-standin", Data: binary, Mode: 0o755}),
		Entrypoint: []string{"/usr/local/bin/falco-standin"},
		Arch:       arch,
		Labels: map[string]string{
			"org.opencontainers.image.title":  "falco-standin",
			"org.opencontainers.image.source": "https://" + module,
		},
	}
}

// ReadFalcosidekick decompresses falcosidekick's binary and checks it is
// the one the folder's README describes.
func (u Upstream) ReadFalcosidekick(ctx context.Context) ([]byte, error) {
	bin, err := unxz(ctx, u.FalcosidekickArchive())
	if err != nil {
		return nil, err
	}
	if err := checkSHA256(bin, falcosidekickSHA256); err != nil {
		return nil, fmt.Errorf("%s: %w", u.FalcosidekickArchive(), err)
	}
	return bin, nil
}

// ReadFalco decompresses Falco's root file system into files, and checks
// that /usr/bin/falco is the binary the folder's README describes.
func (u Upstream) ReadFalco(ctx context.Context) ([]File, error) {
	b, err := unxz(ctx, u.FalcoRootFS())
	if err != nil {
		return nil, err
	}
	files, err := filesOfTar(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.FalcoRootFS(), err)
	}
	for _, f := range files {
		if f.Path == "/usr/bin/falco" {
			if err := checkSHA256(f.Data, falcoBinarySHA256); err != nil {
				return nil, fmt.Errorf("%s: /usr/bin/falco: %w", u.FalcoRootFS(), err)
			}
			return files, nil
		}
	}
	return nil, fmt.Errorf("%s holds no /usr/bin/falco", u.FalcoRootFS())
}

// unxz decompresses a file with xz (Debian package xz-utils).
func unxz(ctx context.Context, file string) ([]byte, error) {
	if _, err := os.Stat(file); err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "xz", "--decompress", "--stdout", file)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) {
		return nil, fmt.Errorf("decompress %s: xz not found: apt-get install xz-utils", file)
	}
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w: %s", file, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func checkSHA256(b []byte, want string) error {
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("sha256 %s, want %s", got, want)
	}
	return nil
}

// filesOfTar reads a root file system tarball into files: folders,
// regular files and symbolic links, with their modes and owners. Other
// kinds of entries (devices, hard links) are refused.
func filesOfTar(r io.Reader) ([]File, error) {
	tr := tar.NewReader(r)
	var out []File
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		p := path.Clean("/" + h.Name)
		if p == "/" {
			continue
		}
		f := File{Path: p, Mode: h.Mode & 0o7777, Owner: h.Uid}
		if h.Uid != h.Gid {
			return nil, fmt.Errorf("%s: owner %d and group %d differ", h.Name, h.Uid, h.Gid)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			f.Dir = true
		case tar.TypeSymlink:
			f.Link, f.Mode = h.Linkname, 0
		case tar.TypeReg:
			if f.Data, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("%s: %w", h.Name, err)
			}
		default:
			return nil, fmt.Errorf("%s: entries of type %q are not supported", h.Name, h.Typeflag)
		}
		out = append(out, f)
	}
}
