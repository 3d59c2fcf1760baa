package falcostandin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Container is a pod's container as the container runtime knows it.
type Container struct {
	// ID is the runtime's id (64 hex characters with containerd).
	ID    string
	Name  string
	Image string
}

// Containers finds containers the way Falco learns about them: from the
// container runtime on the node, not from the API server (the stand-in's
// pod has no rights there). Dir is containerd's folder of running tasks
// for Kubernetes (<state>/io.containerd.runtime.v2.task/k8s.io): each task
// has a folder named by its container id, holding the OCI bundle's
// config.json, whose annotations the CRI plugin wrote.
type Containers struct{ Dir string }

// The annotations of containerd's CRI plugin that name a container.
const (
	annotationType      = "io.kubernetes.cri.container-type"
	annotationName      = "io.kubernetes.cri.container-name"
	annotationPod       = "io.kubernetes.cri.sandbox-name"
	annotationNamespace = "io.kubernetes.cri.sandbox-namespace"
	annotationImage     = "io.kubernetes.cri.image-name"
)

// Find returns the running container of the pod; an empty name finds the
// pod's only container.
func (c Containers) Find(namespace, pod, name string) (Container, error) {
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return Container{}, fmt.Errorf("containerd's tasks: %w", err)
	}
	var found []Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(c.Dir, e.Name(), "config.json"))
		if errors.Is(err, os.ErrNotExist) {
			continue // a task on its way in or out
		}
		if err != nil {
			return Container{}, err
		}
		var spec struct {
			Annotations map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal(b, &spec); err != nil {
			continue
		}
		a := spec.Annotations
		if a[annotationType] != "container" || a[annotationNamespace] != namespace || a[annotationPod] != pod ||
			(name != "" && a[annotationName] != name) {
			continue
		}
		found = append(found, Container{ID: e.Name(), Name: a[annotationName], Image: a[annotationImage]})
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0:
		return Container{}, fmt.Errorf("no running container %q of pod %s/%s in %s", name, namespace, pod, c.Dir)
	}
	var names []string
	for _, f := range found {
		names = append(names, f.Name+" "+f.ID[:min(12, len(f.ID))])
	}
	return Container{}, fmt.Errorf("pod %s/%s has %d running containers named %q: %s", namespace, pod, len(found), name, strings.Join(names, ", "))
}
