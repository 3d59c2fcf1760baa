package hostlab

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
)

// containerdNamespace is the containerd namespace the CRI plugin uses.
const containerdNamespace = "k8s.io"

// writePauseImage builds the sandbox image from busybox into an archive.
func writePauseImage(ctx context.Context, l layout, s settings) (string, error) {
	busybox, _, err := images.ReadBusybox(ctx, s.Busybox)
	if err != nil {
		return "", err
	}
	img, err := images.Build(images.Pause(PauseImage, busybox, runtime.GOARCH))
	if err != nil {
		return "", err
	}
	file := filepath.Join(l.images(), "pause.tar")
	if err := images.WriteArchive(file, map[string]v1.Image{PauseImage: img}); err != nil {
		return "", err
	}
	return file, nil
}

// importImages loads image archives into the node's containerd, where
// the kubelet finds them: pods that use them with imagePullPolicy
// IfNotPresent or Never never pull.
func importImages(ctx context.Context, l layout, archives ...string) error {
	for _, a := range archives {
		cmd := exec.CommandContext(ctx, "ctr", "--address", l.containerdSock(), "--namespace", containerdNamespace,
			"images", "import", a)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("import image archive %s: %w: %s", a, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// ImportImages loads image archives (docker-archive tarballs, as
// images.WriteArchive writes them) into the node's containerd.
func (c *Cluster) ImportImages(ctx context.Context, archives ...string) error {
	return importImages(ctx, c.settings.layout(), archives...)
}

// Images lists the image references the node's containerd holds.
func (c *Cluster) Images(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ctr", "--address", c.settings.layout().containerdSock(),
		"--namespace", containerdNamespace, "images", "list", "--quiet").Output()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return strings.Fields(string(out)), nil
}
