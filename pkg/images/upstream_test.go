package images_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
)

// An image is only built from the files the upstream folder's README
// describes: a falcosidekick binary with another sha256 is refused.
func TestUpstreamBinariesAreChecked(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz is not installed (Debian package xz-utils)")
	}
	u := images.Upstream{Dir: t.TempDir()}
	if got := u.Missing(); len(got) != 3 {
		t.Errorf("an empty folder lacks %v, want the two charts and falcosidekick", got)
	}
	if u.HasFalco() {
		t.Error("an empty folder holds Falco")
	}
	bin := filepath.Join(filepath.Dir(u.FalcosidekickArchive()), "falcosidekick-"+images.FalcosidekickVersion+"-linux-amd64")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("\x7fELF not falcosidekick"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("xz", bin).CombinedOutput(); err != nil {
		t.Fatalf("xz: %v: %s", err, out)
	}
	if _, err := u.ReadFalcosidekick(context.Background()); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("ReadFalcosidekick of another binary = %v, want a sha256 mismatch", err)
	}
}

// The folder next to the checkout, where it is (CI clones next to it).
func TestUpstreamFolderImages(t *testing.T) {
	t.Parallel()
	u := images.UpstreamOf(filepath.Join("..", ".."))
	if missing := u.Missing(); len(missing) > 0 {
		if os.Getenv("FALCO_PHANTOM_REQUIRE_UPSTREAM") != "" {
			t.Fatalf("FALCO_PHANTOM_REQUIRE_UPSTREAM=1: %v", missing)
		}
		t.Skipf("no upstream folder: %v", missing)
	}
	if testing.Short() {
		t.Skip("-short: decompressing falcosidekick and Falco takes seconds")
	}
	ctx := context.Background()
	bin, err := u.ReadFalcosidekick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec := images.Falcosidekick(images.FalcosidekickRef, bin, "amd64")
	if spec.Ref != "ghcr.io/falco-phantom/falcosidekick:2.34.1" || spec.User != "1234:1234" || spec.Entrypoint[0] != "/app/falcosidekick" {
		t.Errorf("falcosidekick image = %s as %s running %v", spec.Ref, spec.User, spec.Entrypoint)
	}
	if !u.HasFalco() {
		t.Log("the folder holds no Falco: its image is not checked")
		return
	}
	files, err := u.ReadFalco(ctx)
	if err != nil {
		t.Fatal(err)
	}
	falco := images.Falco(images.FalcoRef, files, "amd64")
	have := map[string]images.File{}
	for _, f := range falco.Files {
		have[f.Path] = f
	}
	for _, p := range []string{"/usr/bin/falco", "/etc/falco/falco_rules.yaml", images.FalcoMemlockShim, "/lib64/ld-linux-x86-64.so.2", "/etc/falco/config.d", "/etc/falco/rules.d"} {
		if _, ok := have[p]; !ok {
			t.Errorf("the Falco image lacks %s", p)
		}
	}
	if f := have["/usr/bin/falco"]; f.Mode&0o111 == 0 {
		t.Errorf("/usr/bin/falco has mode %o, want it executable", f.Mode)
	}
	if _, err := images.Build(falco); err != nil {
		t.Errorf("build the Falco image: %v", err)
	}
}
