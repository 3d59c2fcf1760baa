// Command build-images builds this project's container images (forwarder
// and mock SOAR) without Docker and writes them into one docker-archive
// tarball, ready for `ctr -n k8s.io images import`, `docker load` or
// `kind load image-archive`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/version"
)

func main() {
	out := flag.String("o", "bin/images.tar", "archive to write")
	registry := flag.String("registry", images.DefaultRegistry, "registry part of the image references")
	tag := flag.String("tag", version.Version, "image tag (and version stamped into the binaries)")
	arch := flag.String("arch", runtime.GOARCH, "CPU architecture: amd64 or arm64")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	imgs, err := images.Project(ctx, ".", *registry, *tag, *arch)
	if err == nil {
		err = os.MkdirAll(dirOf(*out), 0o755)
	}
	if err == nil {
		err = images.WriteArchive(*out, imgs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build-images:", err)
		os.Exit(1)
	}
	refs := make([]string, 0, len(imgs))
	for ref, img := range imgs {
		d, _ := img.Digest()
		refs = append(refs, fmt.Sprintf("  %s  %s", ref, d))
	}
	sort.Strings(refs)
	fmt.Printf("wrote %s in %s:\n", *out, time.Since(start).Round(time.Millisecond))
	for _, r := range refs {
		fmt.Println(r)
	}
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "."
}
