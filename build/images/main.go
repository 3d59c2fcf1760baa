// Command build-images builds this project's container images (forwarder,
// responder and mock SOAR) without Docker and writes them into one docker-archive
// tarball, ready for `ctr -n k8s.io images import`, `docker load` or
// `kind load image-archive`:
//
//	go run ./build/images -o bin/images.tar --tag v0.1.0
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/version"
)

func main() { cmdmain.Main(Run) }

// Run runs the command with args (without the program name). It reads no
// environment.
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, _ func(string) string) error {
	return cmdmain.Execute(ctx, newCommand(streams), args)
}

type options struct {
	output, registry, tag, arch string
}

func newCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := options{output: "bin/images.tar", registry: images.DefaultRegistry, tag: version.Version, arch: runtime.GOARCH}
	cmd := &cobra.Command{
		Use:   "build-images",
		Short: "Build the forwarder, responder and mock SOAR images without Docker into one docker-archive tarball",
		Long: `Build this project's container images (forwarder, responder and mock SOAR) without
Docker and write them into one docker-archive tarball, ready for
"ctr -n k8s.io images import", "docker load" or "kind load image-archive".
Run it from the module root (make images does).`,
		Example:       "  go run ./build/images -o bin/images.tar --tag v0.1.0",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), streams.Out) },
	}
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", o.output, "archive to write")
	f.StringVar(&o.registry, "registry", o.registry, "registry part of the image references")
	f.StringVar(&o.tag, "tag", o.tag, "image tag (and version stamped into the binaries)")
	f.StringVar(&o.arch, "arch", o.arch, "CPU architecture: amd64 or arm64")
	return cmd
}

// run builds the images into o.output and lists them with their digests.
func (o options) run(ctx context.Context, out io.Writer) error {
	start := time.Now()
	imgs, err := images.Project(ctx, ".", o.registry, o.tag, o.arch)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.output), 0o755); err != nil {
		return err
	}
	if err := images.WriteArchive(o.output, imgs); err != nil {
		return err
	}
	refs := make([]string, 0, len(imgs))
	for ref, img := range imgs {
		d, _ := img.Digest()
		refs = append(refs, fmt.Sprintf("  %s  %s", ref, d))
	}
	sort.Strings(refs)
	fmt.Fprintf(out, "wrote %s in %s:\n", o.output, time.Since(start).Round(time.Millisecond))
	for _, r := range refs {
		fmt.Fprintln(out, r)
	}
	return nil
}
