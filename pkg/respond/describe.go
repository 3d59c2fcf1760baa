package respond

import (
	"context"
	"fmt"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Description is what describe tells a case about a pod.
type Description struct {
	Namespace      string            `json:"namespace"`
	Pod            string            `json:"pod"`
	UID            string            `json:"uid"`
	Node           string            `json:"node,omitempty"`
	ServiceAccount string            `json:"service_account,omitempty"`
	Phase          string            `json:"phase,omitempty"`
	StartTime      string            `json:"start_time,omitempty"`
	PodIP          string            `json:"pod_ip,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	// Owners is the owner chain, nearest first: ReplicaSet, Deployment.
	Owners     []Owner         `json:"owners"`
	Containers []ContainerInfo `json:"containers"`
	// Isolated is the case the pod is isolated for, if it is.
	Isolated    string   `json:"isolated,omitempty"`
	HostNetwork bool     `json:"host_network"`
	HostPID     bool     `json:"host_pid"`
	HostIPC     bool     `json:"host_ipc"`
	HostPaths   []string `json:"host_paths,omitempty"`
	// Risks sums up what makes the pod dangerous if compromised.
	Risks []string `json:"risks"`
}

// Owner is one link of the owner chain.
type Owner struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Note says why the chain stops here, when it is not the top.
	Note string `json:"note,omitempty"`
}

// ContainerInfo is one container of the pod.
type ContainerInfo struct {
	Name string `json:"name"`
	// Kind is "container", "init" or "ephemeral".
	Kind  string `json:"kind"`
	Image string `json:"image"`
	// ImageID is the image the node runs, with its digest.
	ImageID                  string   `json:"image_id,omitempty"`
	ContainerID              string   `json:"container_id,omitempty"`
	Privileged               bool     `json:"privileged"`
	AllowPrivilegeEscalation *bool    `json:"allow_privilege_escalation,omitempty"`
	RunAsUser                *int64   `json:"run_as_user,omitempty"`
	ReadOnlyRootFilesystem   bool     `json:"read_only_root_filesystem"`
	CapabilitiesAdded        []string `json:"capabilities_added,omitempty"`
}

func (a *act) describe(ctx context.Context) error {
	d := describePod(a.pod)
	d.Owners = a.owners(ctx)
	a.res.Details = d
	a.res.Message = fmt.Sprintf("pod %s described: %d container(s), owned by %s; %d risk(s)", a.name(), len(d.Containers), topOwner(d.Owners), len(d.Risks))
	return nil
}

func topOwner(o []Owner) string {
	if len(o) == 0 {
		return "nothing (a standalone pod)"
	}
	return o[len(o)-1].Kind + " " + o[len(o)-1].Name
}

// describePod reads what the pod object itself says.
func describePod(p *corev1.Pod) *Description {
	d := &Description{
		Namespace: p.Namespace, Pod: p.Name, UID: string(p.UID), Node: p.Spec.NodeName, ServiceAccount: p.Spec.ServiceAccountName,
		Phase: string(p.Status.Phase), PodIP: p.Status.PodIP, Labels: p.Labels, Isolated: p.Labels[IsolationLabel],
		HostNetwork: p.Spec.HostNetwork, HostPID: p.Spec.HostPID, HostIPC: p.Spec.HostIPC, Owners: []Owner{}, Risks: []string{},
	}
	if p.Status.StartTime != nil {
		d.StartTime = p.Status.StartTime.UTC().Format("2006-01-02T15:04:05Z")
	}
	status := map[string]corev1.ContainerStatus{}
	for _, list := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			status[cs.Name] = cs
		}
	}
	add := func(kind string, c corev1.Container) {
		ci := ContainerInfo{Name: c.Name, Kind: kind, Image: c.Image, ImageID: status[c.Name].ImageID, ContainerID: status[c.Name].ContainerID}
		if sc := c.SecurityContext; sc != nil {
			ci.Privileged = sc.Privileged != nil && *sc.Privileged
			ci.AllowPrivilegeEscalation = sc.AllowPrivilegeEscalation
			ci.RunAsUser = sc.RunAsUser
			ci.ReadOnlyRootFilesystem = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
			if sc.Capabilities != nil {
				for _, c := range sc.Capabilities.Add {
					ci.CapabilitiesAdded = append(ci.CapabilitiesAdded, string(c))
				}
			}
		}
		if ci.RunAsUser == nil && p.Spec.SecurityContext != nil {
			ci.RunAsUser = p.Spec.SecurityContext.RunAsUser
		}
		d.Containers = append(d.Containers, ci)
		if ci.Privileged {
			d.Risks = append(d.Risks, "container "+c.Name+" is privileged")
		}
		if len(ci.CapabilitiesAdded) > 0 {
			d.Risks = append(d.Risks, fmt.Sprintf("container %s adds capabilities %v", c.Name, ci.CapabilitiesAdded))
		}
		if ci.RunAsUser != nil && *ci.RunAsUser == 0 {
			d.Risks = append(d.Risks, "container "+c.Name+" runs as root")
		}
	}
	for _, c := range p.Spec.InitContainers {
		add("init", c)
	}
	for _, c := range p.Spec.Containers {
		add("container", c)
	}
	for _, c := range p.Spec.EphemeralContainers {
		add("ephemeral", corev1.Container(c.EphemeralContainerCommon))
	}
	for _, v := range p.Spec.Volumes {
		if v.HostPath != nil {
			d.HostPaths = append(d.HostPaths, v.HostPath.Path)
		}
	}
	sort.Strings(d.HostPaths)
	for _, h := range []struct {
		on   bool
		what string
	}{{p.Spec.HostNetwork, "host network"}, {p.Spec.HostPID, "host PID namespace"}, {p.Spec.HostIPC, "host IPC namespace"}} {
		if h.on {
			d.Risks = append(d.Risks, "shares the "+h.what)
		}
	}
	for _, hp := range d.HostPaths {
		d.Risks = append(d.Risks, "mounts host path "+hp)
	}
	return d
}

// maxOwners bounds the owner chain (it is two or three long in practice).
const maxOwners = 5

// owners walks the controller references up from the pod, for the kinds
// it knows; the chain stops, with a note, at any other kind or at an owner
// it cannot read.
func (a *act) owners(ctx context.Context) []Owner {
	out := []Owner{}
	ns := a.pod.Namespace
	ref := metav1.GetControllerOf(a.pod)
	for ref != nil && len(out) < maxOwners {
		o := Owner{Kind: ref.Kind, Name: ref.Name}
		next, err := a.owner(ctx, ns, ref)
		switch {
		case err != nil:
			o.Note = "could not read it: " + apiMessage(err)
		case next == nil && !slices.Contains(knownOwners, ref.Kind):
			o.Note = "a kind describe does not follow"
		}
		out = append(out, o)
		if err != nil || next == nil {
			break
		}
		ref = metav1.GetControllerOf(next)
	}
	return out
}

var knownOwners = []string{"ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"}

// owner reads the object ref points to, nil for a kind not followed.
func (a *act) owner(ctx context.Context, ns string, ref *metav1.OwnerReference) (metav1.Object, error) {
	get := metav1.GetOptions{}
	apps, batch, core := a.kube.AppsV1(), a.kube.BatchV1(), a.kube.CoreV1()
	switch ref.Kind {
	case "ReplicaSet":
		return a.obj(apps.ReplicaSets(ns).Get(ctx, ref.Name, get))
	case "Deployment":
		return a.obj(apps.Deployments(ns).Get(ctx, ref.Name, get))
	case "StatefulSet":
		return a.obj(apps.StatefulSets(ns).Get(ctx, ref.Name, get))
	case "DaemonSet":
		return a.obj(apps.DaemonSets(ns).Get(ctx, ref.Name, get))
	case "Job":
		return a.obj(batch.Jobs(ns).Get(ctx, ref.Name, get))
	case "CronJob":
		return a.obj(batch.CronJobs(ns).Get(ctx, ref.Name, get))
	case "ReplicationController":
		return a.obj(core.ReplicationControllers(ns).Get(ctx, ref.Name, get))
	}
	return nil, nil
}

// obj turns a typed Get's answer into a metav1.Object.
func (a *act) obj(o metav1.Object, err error) (metav1.Object, error) {
	if err != nil {
		return nil, err
	}
	return o, nil
}
