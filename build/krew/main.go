// Command krew-manifest writes the krew plugin manifest for a release from
// the release archives, with their real SHA-256 sums:
//
//	go run ./build/krew --version v0.1.0 --dir bin/dist > falco-phantom.yaml
//
// Archives are named kubectl-falco_phantom_<os>_<arch>.tar.gz (make dist).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/template"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
)

const manifest = `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: falco-phantom
spec:
  version: {{ .Version }}
  homepage: https://github.com/falco-phantom/kubectl-falco-phantom
  shortDescription: Send Falco runtime alerts to Splunk SOAR (Phantom)
  description: |
    Installs Falco, NATS JetStream and a forwarder that turns Falco's runtime
    alerts (a shell in a container, a write below /etc...) into Splunk SOAR
    cases, one per incident, with nothing lost or doubled. Includes a mock
    SOAR to try it without a licence, a status check, and test-shell, which
    opens a shell in a container and proves the alert reached SOAR.
  caveats: |
    Start with:
      kubectl falco-phantom install --mock-phantom
      kubectl falco-phantom test-shell
    Falco needs a Linux node with a supported kernel driver (modern eBPF or kmod).
  platforms:
{{- range .Platforms }}
    - selector:
        matchLabels:
          os: {{ .OS }}
          arch: {{ .Arch }}
      uri: https://github.com/falco-phantom/kubectl-falco-phantom/releases/download/{{ $.Version }}/{{ .File }}
      sha256: {{ .SHA256 }}
      bin: kubectl-falco_phantom
      files:
        - from: kubectl-falco_phantom
          to: .
        - from: kubectl_complete-falco_phantom
          to: .
        - from: LICENSE
          to: .
{{- end }}
`

type platform struct{ OS, Arch, File, SHA256 string }

// platforms are the release's targets, as make dist builds them.
var platforms = [][2]string{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}

func archiveName(os, arch string) string {
	return fmt.Sprintf("kubectl-falco_phantom_%s_%s.tar.gz", os, arch)
}

func main() { cmdmain.Main(Run) }

// Run runs the command with args (without the program name). It reads no
// environment.
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, _ func(string) string) error {
	return cmdmain.Execute(ctx, newCommand(streams), args)
}

func newCommand(streams genericiooptions.IOStreams) *cobra.Command {
	var version string
	dir := "bin/dist"
	cmd := &cobra.Command{
		Use:   "krew-manifest",
		Short: "Write the krew plugin manifest of a release from its archives",
		Long: `Write the krew plugin manifest of a release to stdout, from the release
archives (kubectl-falco_phantom_<os>_<arch>.tar.gz, as make dist builds
them) with their real SHA-256 sums.`,
		Example:       "  go run ./build/krew --version v0.1.0 --dir bin/dist > falco-phantom.yaml",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			if version == "" {
				return usageError{errors.New("--version is required")}
			}
			sums, err := archiveSums(dir)
			if err != nil {
				return err
			}
			return render(streams.Out, version, sums)
		},
	}
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.Flags().StringVar(&version, "version", "", "release version, e.g. v0.1.0")
	cmd.Flags().StringVar(&dir, "dir", dir, "folder holding the release archives")
	return cmd
}

// usageError is a mistake in how the command was called: it exits 2.
type usageError struct{ error }

func (usageError) ExitCode() int { return 2 }

// archiveSums returns the SHA-256 of each platform's archive in dir, by
// archive name.
func archiveSums(dir string) (map[string]string, error) {
	sums := map[string]string{}
	for _, p := range platforms {
		file := archiveName(p[0], p[1])
		sum, err := sha256File(filepath.Join(dir, file))
		if err != nil {
			return nil, err
		}
		sums[file] = sum
	}
	return sums, nil
}

// render writes the manifest of version with the given archive sums.
func render(w io.Writer, version string, sums map[string]string) error {
	var ps []platform
	for _, p := range platforms {
		file := archiveName(p[0], p[1])
		sum, ok := sums[file]
		if !ok {
			return fmt.Errorf("no SHA-256 for %s", file)
		}
		ps = append(ps, platform{OS: p[0], Arch: p[1], File: file, SHA256: sum})
	}
	t := template.Must(template.New("krew").Parse(manifest))
	return t.Execute(w, map[string]any{"Version": version, "Platforms": ps})
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("release archive: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("release archive %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
