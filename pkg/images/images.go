// Package images builds this project's container images in-process, with
// no Docker engine: each image is one reproducible layer of files (static
// binaries, CA certificates, a passwd entry for the non-root user) written
// as a docker-archive tarball that `ctr images import`, `docker load` and
// kind's image loading all accept.
package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRoot is the user and group the images run as.
const NonRoot = 65532

// File is one file (or folder, or link) of an image.
type File struct {
	// Path inside the image, absolute.
	Path string
	// Data is the content of a regular file.
	Data []byte
	// Mode is the permission bits; 0 means 0644 for files, 0755 for folders.
	Mode int64
	// Dir makes this a folder.
	Dir bool
	// Link makes this a symbolic link to Link.
	Link string
	// Owner is the numeric owner (user and group); 0 is root.
	Owner int
}

// Spec describes an image.
type Spec struct {
	// Ref is the image reference, e.g. ghcr.io/falco-phantom/falco-phantom-forwarder:0.1.0.
	Ref        string
	Files      []File
	Entrypoint []string
	Cmd        []string
	Env        []string
	// User is "uid:gid"; empty runs as root.
	User       string
	WorkingDir string
	// Ports are exposed ports such as "8081/tcp".
	Ports  []string
	Labels map[string]string
	// OS and Arch of the binaries; default linux/amd64.
	OS, Arch string
}

// epoch is the time stamped on every file and on the image, so that the
// same inputs give the same image digest.
var epoch = time.Unix(0, 0).UTC()

// Build makes the image: one layer holding Files, on no base image.
func Build(spec Spec) (v1.Image, error) {
	if _, err := name.ParseReference(spec.Ref); err != nil {
		return nil, fmt.Errorf("image reference %q: %w", spec.Ref, err)
	}
	layerTar, err := tarFiles(spec.Files)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", spec.Ref, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.DockerLayer))
	if err != nil {
		return nil, fmt.Errorf("image %s: layer: %w", spec.Ref, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", spec.Ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = orDefault(spec.OS, "linux"), orDefault(spec.Arch, "amd64")
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.Env = spec.Entrypoint, spec.Cmd, spec.Env
	cf.Config.User, cf.Config.WorkingDir, cf.Config.Labels = spec.User, spec.WorkingDir, spec.Labels
	if len(spec.Ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range spec.Ports {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", spec.Ref, err)
	}
	return mutate.CreatedAt(img, v1.Time{Time: epoch})
}

// tarFiles writes the files, with every parent folder, sorted by path.
func tarFiles(files []File) ([]byte, error) {
	all := map[string]File{}
	for _, f := range files {
		if !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("file path %q is not absolute", f.Path)
		}
		p := path.Clean(f.Path)
		all[p] = f
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if _, ok := all[dir]; !ok {
				all[dir] = File{Path: dir, Dir: true}
			}
		}
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		f := all[p]
		h := &tar.Header{
			Name: strings.TrimPrefix(p, "/"), ModTime: epoch, Uid: f.Owner, Gid: f.Owner, Format: tar.FormatPAX,
		}
		switch {
		case f.Dir:
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", orMode(f.Mode, 0o755)
		case f.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Link, 0o777
		default:
			h.Typeflag, h.Size, h.Mode = tar.TypeReg, int64(len(f.Data)), orMode(f.Mode, 0o644)
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteArchive writes images into one docker-archive tarball, each under
// its reference.
func WriteArchive(file string, imgs map[string]v1.Image) error {
	refs := map[name.Reference]v1.Image{}
	for ref, img := range imgs {
		r, err := name.ParseReference(ref)
		if err != nil {
			return fmt.Errorf("image reference %q: %w", ref, err)
		}
		refs[r] = img
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("create image archive: %w", err)
	}
	if err := tarball.MultiRefWrite(refs, f); err != nil {
		f.Close()
		return fmt.Errorf("write image archive %s: %w", file, err)
	}
	return f.Close()
}

// BaseFiles are what a static Go binary running as non-root needs: a
// passwd and group entry, CA certificates (read from this machine, if
// present) and a writable /tmp.
func BaseFiles() []File {
	files := []File{
		{Path: "/etc/passwd", Data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRoot, NonRoot))},
		{Path: "/etc/group", Data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRoot))},
		{Path: "/home/nonroot", Dir: true, Owner: NonRoot, Mode: 0o700},
		{Path: "/tmp", Dir: true, Mode: 0o1777},
	}
	for _, bundle := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"} {
		if b, err := os.ReadFile(bundle); err == nil {
			files = append(files, File{Path: "/etc/ssl/certs/ca-certificates.crt", Data: b})
			break
		}
	}
	return files
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orMode(m, def int64) int64 {
	if m == 0 {
		return def
	}
	return m
}
