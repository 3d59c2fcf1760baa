package respond

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ParseTaint reads key[=value]:Effect.
func ParseTaint(s string) (corev1.Taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return corev1.Taint{}, invalid(fmt.Sprintf("taint %s: write key[=value]:Effect, the Effect one of NoSchedule, PreferNoSchedule, NoExecute", quote(s)))
	}
	key, value, _ := strings.Cut(kv, "=")
	t := corev1.Taint{Key: key, Value: value, Effect: corev1.TaintEffect(effect)}
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return t, invalid(fmt.Sprintf("taint key %s: %s", quote(key), errs[0]))
	}
	if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
		return t, invalid(fmt.Sprintf("taint value %s: %s", quote(value), errs[0]))
	}
	if !slices.Contains([]corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}, t.Effect) {
		return t, invalid(fmt.Sprintf("taint effect %s: one of NoSchedule, PreferNoSchedule, NoExecute", quote(effect)))
	}
	return t, nil
}

func (a *act) node(ctx context.Context) (*corev1.Node, error) {
	if a.pod.Spec.NodeName == "" {
		return nil, &Error{Code: NotScheduled, Message: fmt.Sprintf("pod %s is not on a node yet", a.name())}
	}
	n, err := a.kube.CoreV1().Nodes().Get(ctx, a.pod.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, kubeError("get node "+a.pod.Spec.NodeName, err)
	}
	return n, nil
}

// cordon marks the pod's node unschedulable and adds the taint asked for.
func (a *act) cordon(ctx context.Context) error {
	return a.onNode(ctx, true, func(n *corev1.Node) ([]corev1.Taint, []string) {
		taints := n.Spec.Taints
		var did []string
		if !n.Spec.Unschedulable {
			did = append(did, "cordoned")
		}
		if a.req.Taint != "" {
			t, _ := ParseTaint(a.req.Taint)
			i := slices.IndexFunc(taints, func(x corev1.Taint) bool { return x.Key == t.Key && x.Effect == t.Effect })
			switch {
			case i < 0:
				taints = append(slices.Clone(taints), t)
				did = append(did, "tainted "+a.req.Taint)
			case taints[i].Value != t.Value:
				taints = slices.Clone(taints)
				taints[i] = t
				did = append(did, "tainted "+a.req.Taint)
			}
		}
		return taints, did
	}, "is already cordoned"+taintSuffix("with", a.req.Taint))
}

// uncordon marks the pod's node schedulable and removes the taint named.
func (a *act) uncordon(ctx context.Context) error {
	return a.onNode(ctx, false, func(n *corev1.Node) ([]corev1.Taint, []string) {
		taints := n.Spec.Taints
		var did []string
		if n.Spec.Unschedulable {
			did = append(did, "uncordoned")
		}
		if a.req.Taint != "" {
			t, _ := ParseTaint(a.req.Taint)
			kept := slices.DeleteFunc(slices.Clone(taints), func(x corev1.Taint) bool { return x.Key == t.Key && x.Effect == t.Effect })
			if len(kept) != len(taints) {
				taints = kept
				did = append(did, "taint "+t.Key+":"+string(t.Effect)+" removed")
			}
		}
		return taints, did
	}, "is already schedulable"+taintSuffix("without", a.req.Taint))
}

// onNode reads the pod's node, works out its taints and what changes with
// plan, and patches it; a node changed meanwhile is read again, up to
// three times.
func (a *act) onNode(ctx context.Context, unschedulable bool, plan func(*corev1.Node) ([]corev1.Taint, []string), already string) error {
	for attempt := 1; ; attempt++ {
		n, err := a.node(ctx)
		if err != nil {
			return err
		}
		taints, did := plan(n)
		if len(did) == 0 {
			return a.done(false, "node %s (of pod %s) %s", n.Name, a.name(), already)
		}
		err = a.patchNode(ctx, n, unschedulable, taints)
		if apierrors.IsConflict(err) && attempt < 3 {
			continue
		}
		if apierrors.IsConflict(err) {
			return &Error{Code: KubernetesError, Message: fmt.Sprintf("node %s kept changing while being patched: try again", n.Name), Err: err}
		}
		if err != nil {
			return kubeError("patch node "+n.Name, err)
		}
		return a.done(true, "node %s (of pod %s) %s", n.Name, a.name(), strings.Join(did, " and "))
	}
}

func taintSuffix(with, t string) string {
	if t == "" {
		return ""
	}
	return " " + with + " taint " + t
}

// patchNode sets the node's unschedulable flag and taints, if the node has
// not changed since it was read (its resourceVersion): the taints are a
// list, replaced whole.
func (a *act) patchNode(ctx context.Context, n *corev1.Node, unschedulable bool, taints []corev1.Taint) error {
	if taints == nil {
		taints = []corev1.Taint{}
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": n.ResourceVersion},
		"spec":     map[string]any{"unschedulable": unschedulable, "taints": taints},
	})
	if err != nil {
		return &Error{Code: KubernetesError, Message: "build the patch: " + err.Error(), Err: err}
	}
	_, err = a.kube.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{DryRun: a.dryRun()})
	return err
}
