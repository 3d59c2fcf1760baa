package images_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
)

func TestBuildIsReproducibleAndRunnable(t *testing.T) {
	t.Parallel()
	ref := images.Ref("registry.internal:5000", images.ForwarderRepo, "0.1.0")
	if ref != "registry.internal:5000/falco-phantom/falco-phantom-forwarder:0.1.0" {
		t.Fatalf("Ref = %s", ref)
	}
	bin := []byte("\x7fELF pretend binary")
	a, err := images.Build(images.Forwarder(ref, bin, "amd64"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := images.Build(images.Forwarder(ref, bin, "amd64"))
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("same inputs, different digests: %s and %s", da, db)
	}
	other, _ := images.Build(images.Forwarder(ref, append(bin, '!'), "amd64"))
	if d, _ := other.Digest(); d == da {
		t.Error("a different binary gave the same digest")
	}
	cf, err := a.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/usr/local/bin/falco-phantom-forwarder" || cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("config = %+v", cf.Config)
	}

	// Written to an archive, it reads back under its reference with the
	// binary executable at its place.
	file := filepath.Join(t.TempDir(), "images.tar")
	if err := images.WriteArchive(file, map[string]v1.Image{ref: a}); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(ref)
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatalf("read back %s: %v", ref, err)
	}
	layers, _ := img.Layers()
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	files := map[string]*tar.Header{}
	var content []byte
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
		if h.Name == "usr/local/bin/falco-phantom-forwarder" {
			content, _ = io.ReadAll(tr)
		}
	}
	if h := files["usr/local/bin/falco-phantom-forwarder"]; h == nil || h.Mode != 0o755 || !bytes.Equal(content, bin) {
		t.Errorf("binary in the image: %+v", h)
	}
	for _, want := range []string{"etc/passwd", "etc/group", "tmp/", "usr/", "usr/local/bin/"} {
		if files[want] == nil {
			t.Errorf("image lacks %s", want)
		}
	}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil && files["etc/ssl/certs/ca-certificates.crt"] == nil {
		t.Error("image lacks the CA certificates of this machine")
	}
}

// The responder's image runs its binary as non-root and exposes its
// HTTPS port.
func TestResponderImage(t *testing.T) {
	t.Parallel()
	ref := images.Ref(images.DefaultRegistry, images.ResponderRepo, "0.1.0")
	img, err := images.Build(images.Responder(ref, []byte("\x7fELF responder"), "arm64"))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cf.Config.ExposedPorts["8443/tcp"]; !ok || cf.Config.User != "65532:65532" ||
		cf.Config.Entrypoint[0] != "/usr/local/bin/falco-phantom-responder" || cf.Architecture != "arm64" {
		t.Errorf("responder image config = %+v", cf.Config)
	}
}
