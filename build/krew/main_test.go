package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
)

// plugin is the part of krew's Plugin manifest that krew reads to install.
type plugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		ShortDescription string `json:"shortDescription"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

func TestManifestFromArchives(t *testing.T) {
	dir := t.TempDir()
	want := map[string]string{}
	for i, p := range platforms {
		file := archiveName(p[0], p[1])
		content := []byte(strings.Repeat("archive ", i+1) + file)
		if err := os.WriteFile(filepath.Join(dir, file), content, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		want[p[0]+"/"+p[1]] = hex.EncodeToString(sum[:])
	}
	sums, err := archiveSums(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := render(&out, "v1.2.3", sums); err != nil {
		t.Fatal(err)
	}
	var m plugin
	if err := yaml.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("manifest does not parse: %v\n%s", err, out.String())
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "falco-phantom" {
		t.Errorf("header: %s %s %s", m.APIVersion, m.Kind, m.Metadata.Name)
	}
	if m.Spec.Version != "v1.2.3" || m.Spec.ShortDescription == "" {
		t.Errorf("spec: version %q, short description %q", m.Spec.Version, m.Spec.ShortDescription)
	}
	if len(m.Spec.Platforms) != len(platforms) {
		t.Fatalf("%d platforms, want %d", len(m.Spec.Platforms), len(platforms))
	}
	for _, p := range m.Spec.Platforms {
		key := p.Selector.MatchLabels["os"] + "/" + p.Selector.MatchLabels["arch"]
		if p.SHA256 != want[key] {
			t.Errorf("%s: sha256 %s, want %s", key, p.SHA256, want[key])
		}
		wantURI := "https://github.com/falco-phantom/kubectl-falco-phantom/releases/download/v1.2.3/" +
			archiveName(p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"])
		if p.URI != wantURI {
			t.Errorf("%s: uri %s, want %s", key, p.URI, wantURI)
		}
		if p.Bin != "kubectl-falco_phantom" {
			t.Errorf("%s: bin %q", key, p.Bin)
		}
		var from []string
		for _, f := range p.Files {
			from = append(from, f.From)
		}
		if got := strings.Join(from, ","); got != "kubectl-falco_phantom,kubectl_complete-falco_phantom,LICENSE" {
			t.Errorf("%s: files %s", key, got)
		}
	}
}

func TestMissingArchiveIsNamed(t *testing.T) {
	_, err := archiveSums(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "kubectl-falco_phantom_linux_amd64.tar.gz") {
		t.Fatalf("error %v, want one naming the missing archive", err)
	}
}

// TestPublishedManifestIsCurrent checks that the manifest kept in docs/krew
// is what this command writes for its version and sums: a change to the
// template without a new manifest fails here.
func TestPublishedManifestIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "krew", "falco-phantom.yaml")
	published, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m plugin
	if err := yaml.Unmarshal(published, &m); err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	sums := map[string]string{}
	for _, p := range m.Spec.Platforms {
		sums[filepath.Base(p.URI)] = p.SHA256
		if len(p.SHA256) != 64 {
			t.Errorf("%s: sha256 %q is not a SHA-256", p.URI, p.SHA256)
		}
	}
	var out bytes.Buffer
	if err := render(&out, m.Spec.Version, sums); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if out.String() != string(published) {
		t.Errorf("%s differs from what make dist writes; run make dist VERSION=%s and copy bin/dist/falco-phantom.yaml there", path, m.Spec.Version)
	}
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	for _, p := range platforms {
		if err := os.WriteFile(filepath.Join(dir, archiveName(p[0], p[1])), []byte(p[0]+p[1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	getenv := func(string) string { return "" }
	streams, _, out, _ := genericiooptions.NewTestIOStreams()
	if err := Run(t.Context(), []string{"--version", "v9.9.9", "--dir", dir}, streams, getenv); err != nil {
		t.Fatal(err)
	}
	var m plugin
	if err := yaml.Unmarshal(out.Bytes(), &m); err != nil || m.Spec.Version != "v9.9.9" || len(m.Spec.Platforms) != len(platforms) {
		t.Errorf("manifest: version %q, %d platforms, %v; want v9.9.9, %d\n%s", m.Spec.Version, len(m.Spec.Platforms), err, len(platforms), out)
	}
	err := Run(t.Context(), []string{"--dir", dir}, streams, getenv)
	if err == nil || !strings.Contains(err.Error(), "--version is required") || cmdmain.ExitCode(err) != 2 {
		t.Errorf("without --version: %v (exit %d), want a usage error that exits 2", err, cmdmain.ExitCode(err))
	}
}
