package images_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
)

// The stand-in charts run the lab's images by reference: the references
// must be the ones images.Lab builds, or pods would wait for an image
// that no registry serves.
func TestStandinChartsUseTheLabImages(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	version, err := images.ModuleVersion(context.Background(), root, images.NATSServerModule)
	if err != nil {
		t.Fatal(err)
	}
	var nats struct {
		Container struct {
			Image struct{ Registry, Repository, Tag string } `json:"image"`
		} `json:"container"`
	}
	readValues(t, filepath.Join(root, "test", "standin", "charts", "nats", "values.yaml"), &nats)
	img := nats.Container.Image
	if got, want := images.Ref(img.Registry, img.Repository, img.Tag), images.NATSServerRef(version); got != want {
		t.Errorf("nats-standin runs %s, want %s (the nats-server version go.mod requires)", got, want)
	}
	var falco struct {
		Standin struct {
			Image         string `json:"image"`
			SidekickImage string `json:"sidekickImage"`
		} `json:"standin"`
	}
	readValues(t, filepath.Join(root, "test", "standin", "charts", "falco", "values.yaml"), &falco)
	if falco.Standin.Image != images.ShellRef || falco.Standin.SidekickImage != images.FalcosidekickRef {
		t.Errorf("falco-standin runs %s and %s, want %s and %s", falco.Standin.Image, falco.Standin.SidekickImage, images.ShellRef, images.FalcosidekickRef)
	}
}

func readValues(t *testing.T, file string, into any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func TestShellAndPauseImages(t *testing.T) {
	t.Parallel()
	busybox := []byte("\x7fELF pretend busybox")
	shell := images.Shell(images.ShellRef, busybox, []string{"busybox", "sh", "nslookup", "[", "../escape", ""}, "amd64")
	links := map[string]string{}
	for _, f := range shell.Files {
		if f.Link != "" {
			links[f.Path] = f.Link
		}
	}
	want := map[string]string{"/bin/sh": "busybox", "/bin/nslookup": "busybox", "/bin/[": "busybox"}
	for p, target := range want {
		if links[p] != target {
			t.Errorf("shell image: %s -> %q, want -> %s", p, links[p], target)
		}
	}
	if len(links) != len(want) {
		t.Errorf("shell image links = %v, want only %v", links, want)
	}
	if shell.User != "" || shell.Entrypoint[0] != "/bin/sh" {
		t.Errorf("shell image runs %v as %q, want /bin/sh as root", shell.Entrypoint, shell.User)
	}
	if _, err := images.Build(shell); err != nil {
		t.Errorf("build the shell image: %v", err)
	}
	pause := images.Pause("ghcr.io/falco-phantom/pause:test", busybox, "amd64")
	if strings.Join(pause.Entrypoint, " ") != "/bin/sleep 2147483647" {
		t.Errorf("pause entrypoint = %v", pause.Entrypoint)
	}
	if _, err := images.Build(pause); err != nil {
		t.Errorf("build the pause image: %v", err)
	}
}

func TestReadBusyboxWantsAStaticBinary(t *testing.T) {
	t.Parallel()
	// /bin/sh is dynamically linked on Debian (dash or bash).
	_, _, err := images.ReadBusybox(context.Background(), "/bin/sh")
	if err == nil {
		t.Skip("/bin/sh is static here; nothing to check")
	}
	if !strings.Contains(err.Error(), "busybox-static") {
		t.Errorf("error %q does not say which package to install", err)
	}
	_, _, err = images.ReadBusybox(context.Background(), filepath.Join(t.TempDir(), "absent"))
	if err == nil || !strings.Contains(err.Error(), "busybox-static") {
		t.Errorf("missing binary: error %v, want one naming busybox-static", err)
	}
}
