package install

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
)

// workload is a Deployment, StatefulSet or DaemonSet of a release.
type workload struct {
	Kind, Name, Namespace string
}

func (w workload) String() string { return w.Kind + "/" + w.Name }

// workloads lists the workloads in a release manifest.
func workloads(manifest, namespace string) ([]workload, error) {
	var out []workload
	dec := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096).Decode(&meta); err != nil {
			continue // comments only, or not an object
		}
		switch meta.Kind {
		case "Deployment", "StatefulSet", "DaemonSet":
			ns := meta.Metadata.Namespace
			if ns == "" {
				ns = namespace
			}
			out = append(out, workload{Kind: meta.Kind, Name: meta.Metadata.Name, Namespace: ns})
		}
	}
}

// readiness of one workload.
type readiness struct {
	ready    bool
	summary  string // e.g. "1/3 ready"
	selector labels.Selector
}

func check(ctx context.Context, kube kubernetes.Interface, w workload) (readiness, error) {
	apps := kube.AppsV1()
	switch w.Kind {
	case "Deployment":
		d, err := apps.Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return readiness{}, err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		ok := s.ObservedGeneration >= d.Generation && s.UpdatedReplicas >= want && s.AvailableReplicas >= want && s.Replicas == s.UpdatedReplicas
		return readiness{ok, fmt.Sprintf("%d/%d ready", s.AvailableReplicas, want), selectorOf(d.Spec.Selector)}, nil
	case "StatefulSet":
		st, err := apps.StatefulSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return readiness{}, err
		}
		want := int32(1)
		if st.Spec.Replicas != nil {
			want = *st.Spec.Replicas
		}
		s := st.Status
		ok := s.ObservedGeneration >= st.Generation && s.ReadyReplicas >= want && s.UpdatedReplicas >= want
		return readiness{ok, fmt.Sprintf("%d/%d ready", s.ReadyReplicas, want), selectorOf(st.Spec.Selector)}, nil
	default:
		ds, err := apps.DaemonSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return readiness{}, err
		}
		s := ds.Status
		ok := s.ObservedGeneration >= ds.Generation && s.DesiredNumberScheduled > 0 &&
			s.NumberReady >= s.DesiredNumberScheduled && s.UpdatedNumberScheduled >= s.DesiredNumberScheduled
		return readiness{ok, fmt.Sprintf("%d/%d nodes ready", s.NumberReady, s.DesiredNumberScheduled), selectorOf(ds.Spec.Selector)}, nil
	}
}

func selectorOf(s *metav1.LabelSelector) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return labels.Nothing()
	}
	return sel
}

// waitReady waits until every workload of a release is ready, printing
// what it waits for, and on timeout explains what is wrong.
func (in *Installer) waitReady(ctx context.Context, component, namespace, manifest string, timeout time.Duration) error {
	ws, err := workloads(manifest, namespace)
	if err != nil {
		return fmt.Errorf("%s: %w", component, err)
	}
	if len(ws) == 0 {
		return nil
	}
	start := time.Now()
	deadline := start.Add(timeout)
	lastLine, lastPrint := "", time.Time{}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		var waiting []string
		for _, w := range ws {
			r, err := check(ctx, in.Kube, w)
			switch {
			case err != nil:
				waiting = append(waiting, fmt.Sprintf("%s: %v", w, err))
			case !r.ready:
				waiting = append(waiting, fmt.Sprintf("%s %s%s", w, r.summary, podHint(ctx, in.Kube, w.Namespace, r.selector)))
			}
		}
		if len(waiting) == 0 {
			in.progress("  %s: ready after %s", component, time.Since(start).Round(time.Second))
			return nil
		}
		line := strings.Join(waiting, "; ")
		if line != lastLine || time.Since(lastPrint) >= 10*time.Second {
			in.progress("  %s: waiting for %s [%s]", component, line, time.Since(start).Round(time.Second))
			lastLine, lastPrint = line, time.Now()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not ready after %s:\n%s", component, timeout, in.diagnose(ctx, ws))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// podHint is a short reason why the workload's first unready pod waits.
func podHint(ctx context.Context, kube kubernetes.Interface, namespace string, sel labels.Selector) string {
	pods, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil || len(pods.Items) == 0 {
		return " (no pod yet)"
	}
	for _, p := range pods.Items {
		if reason := podReason(&p); reason != "" {
			return fmt.Sprintf(" (%s: %s)", p.Name, reason)
		}
	}
	return ""
}

// podReason says why a pod is not ready, or "" when it is.
func podReason(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return "unschedulable: " + oneLine(c.Message)
		}
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			msg := cs.State.Waiting.Reason
			if cs.State.Waiting.Message != "" {
				msg += " (" + oneLine(cs.State.Waiting.Message) + ")"
			}
			return fmt.Sprintf("container %s %s", cs.Name, msg)
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
			return fmt.Sprintf("container %s exited %d: %s", cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason)
		case !cs.Ready && cs.State.Running != nil:
			return fmt.Sprintf("container %s running, not ready (restarts %d)", cs.Name, cs.RestartCount)
		}
	}
	if p.Status.Phase != corev1.PodRunning {
		return string(p.Status.Phase)
	}
	return ""
}

// diagnose describes the workloads that are not ready: their pods, the
// containers' states and the pods' recent warning events.
func (in *Installer) diagnose(ctx context.Context, ws []workload) string {
	var b strings.Builder
	for _, w := range ws {
		r, err := check(ctx, in.Kube, w)
		if err != nil {
			fmt.Fprintf(&b, "  %s: %v\n", w, err)
			continue
		}
		if r.ready {
			continue
		}
		fmt.Fprintf(&b, "  %s: %s\n", w, r.summary)
		pods, err := in.Kube.CoreV1().Pods(w.Namespace).List(ctx, metav1.ListOptions{LabelSelector: r.selector.String()})
		if err != nil {
			fmt.Fprintf(&b, "    pods: %v\n", err)
			continue
		}
		if len(pods.Items) == 0 {
			fmt.Fprintf(&b, "    no pod was created: %s\n", controllerEvents(ctx, in.Kube, w))
		}
		for _, p := range pods.Items {
			reason := podReason(&p)
			if reason == "" {
				reason = "ready"
			}
			fmt.Fprintf(&b, "    pod %s: %s\n", p.Name, reason)
			for _, e := range warnings(ctx, in.Kube, p.Namespace, "Pod", p.Name) {
				fmt.Fprintf(&b, "      event %s\n", e)
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func controllerEvents(ctx context.Context, kube kubernetes.Interface, w workload) string {
	ev := warnings(ctx, kube, w.Namespace, w.Kind, w.Name)
	if len(ev) == 0 {
		return "no events (is the controller manager running?)"
	}
	return strings.Join(ev, "; ")
}

// warnings returns the last warning events of an object, newest last.
func warnings(ctx context.Context, kube kubernetes.Interface, namespace, kind, name string) []string {
	list, err := kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name + ",type=Warning",
	})
	if err != nil {
		return nil
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].LastTimestamp.Before(&list.Items[j].LastTimestamp) })
	var out []string
	for _, e := range list.Items {
		out = append(out, fmt.Sprintf("%s: %s", e.Reason, oneLine(e.Message)))
	}
	if len(out) > 3 {
		out = out[len(out)-3:]
	}
	return out
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Readiness reports whether every workload of a release manifest is ready:
// one line per workload, and for the first one that is not, why.
func Readiness(ctx context.Context, kube kubernetes.Interface, namespace, manifest string) (ready bool, lines []string, detail string, err error) {
	ws, err := workloads(manifest, namespace)
	if err != nil {
		return false, nil, "", err
	}
	ready = true
	for _, w := range ws {
		r, err := check(ctx, kube, w)
		if err != nil {
			ready = false
			lines = append(lines, fmt.Sprintf("%s: %v", w, err))
			if detail == "" {
				detail = fmt.Sprintf("%s: %v", w, err)
			}
			continue
		}
		lines = append(lines, w.String()+" "+r.summary)
		if !r.ready {
			ready = false
			if detail == "" {
				detail = w.String() + " " + r.summary + podHint(ctx, kube, w.Namespace, r.selector)
			}
		}
	}
	return ready, lines, detail, nil
}
