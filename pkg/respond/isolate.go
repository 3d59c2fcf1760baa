package respond

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// IsolationPolicy is the NetworkPolicy, one per namespace, that denies all
// traffic to and from the pods with the IsolationLabel.
const IsolationPolicy = "falco-phantom-isolate"

// act is one request on its resolved pod.
type act struct {
	kube kubernetes.Interface
	req  Request
	pod  *corev1.Pod
	res  *Result
}

// writeOpts make a dry run a server-side one: the API server checks the
// rights and the object, and keeps nothing.
func (a *act) dryRun() []string {
	if a.req.DryRun {
		return []string{metav1.DryRunAll}
	}
	return nil
}

func (a *act) done(changed bool, format string, args ...any) error {
	a.res.Changed = changed
	msg := fmt.Sprintf(format, args...)
	if a.req.DryRun && changed {
		msg = "dry run: would be " + msg
	}
	a.res.Message = msg
	return nil
}

func (a *act) name() string { return a.pod.Namespace + "/" + a.pod.Name }

func (a *act) caseValue() string {
	if a.req.CaseID > 0 {
		return strconv.FormatInt(a.req.CaseID, 10)
	}
	return "manual"
}

// isolationPolicy is the policy isolate keeps in ns: every pod with the
// label, no rule, both directions: nothing in, nothing out.
func isolationPolicy(ns string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: IsolationPolicy, Namespace: ns, Labels: map[string]string{
			"app.kubernetes.io/managed-by": "falco-phantom",
		}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: IsolationLabel, Operator: metav1.LabelSelectorOpExists,
			}}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
}

// isolate makes sure the namespace's isolation policy exists, then labels
// the pod: once the label is on, the policy is there to select it.
func (a *act) isolate(ctx context.Context) error {
	policyMade, err := a.ensurePolicy(ctx)
	if err != nil {
		return err
	}
	a.res.Warnings = append(a.res.Warnings, a.leaks(ctx)...)
	if v, ok := a.pod.Labels[IsolationLabel]; ok {
		return a.done(policyMade, "pod %s already isolated (label %s=%s); NetworkPolicy %s denies all its traffic", a.name(), IsolationLabel, v, IsolationPolicy)
	}
	if err := a.patchMeta(ctx, "labels", map[string]*string{IsolationLabel: ptr(a.caseValue())}); err != nil {
		return err
	}
	return a.done(true, "pod %s isolated: labelled %s=%s, NetworkPolicy %s denies all its traffic", a.name(), IsolationLabel, a.caseValue(), IsolationPolicy)
}

// ensurePolicy creates the isolation policy when missing; it warns when
// someone changed it.
func (a *act) ensurePolicy(ctx context.Context) (bool, error) {
	want := isolationPolicy(a.pod.Namespace)
	nps := a.kube.NetworkingV1().NetworkPolicies(a.pod.Namespace)
	got, err := nps.Get(ctx, IsolationPolicy, metav1.GetOptions{})
	if err == nil {
		if !apiequality.Semantic.DeepEqual(got.Spec, want.Spec) {
			a.res.Warnings = append(a.res.Warnings, fmt.Sprintf("NetworkPolicy %s/%s was changed since falco-phantom made it: it may not deny all traffic; delete it and isolate again", a.pod.Namespace, IsolationPolicy))
		}
		return false, nil
	}
	if !apierrors.IsNotFound(err) {
		return false, kubeError("get NetworkPolicy "+IsolationPolicy, err)
	}
	_, err = nps.Create(ctx, want, metav1.CreateOptions{DryRun: a.dryRun()})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return false, kubeError("create NetworkPolicy "+IsolationPolicy, err)
	}
	return true, nil
}

// leaks lists the other policies that select the pod and allow some
// traffic: policies add up, so that traffic still flows.
func (a *act) leaks(ctx context.Context) []string {
	list, err := a.kube.NetworkingV1().NetworkPolicies(a.pod.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{"could not list the namespace's NetworkPolicies to check that none lets traffic through: " + apiMessage(err)}
	}
	withLabel := labels.Set{IsolationLabel: a.caseValue()}
	for k, v := range a.pod.Labels {
		withLabel[k] = v
	}
	var out []string
	for _, np := range list.Items {
		if np.Name == IsolationPolicy {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(withLabel) {
			continue
		}
		var dirs []string
		if len(np.Spec.Ingress) > 0 {
			dirs = append(dirs, "in")
		}
		if len(np.Spec.Egress) > 0 {
			dirs = append(dirs, "out")
		}
		if len(dirs) > 0 {
			out = append(out, fmt.Sprintf("NetworkPolicy %s/%s also selects the pod and allows some traffic %s: policies add up, so that traffic still flows", np.Namespace, np.Name, joinDirs(dirs)))
		}
	}
	return out
}

func joinDirs(d []string) string {
	if len(d) == 2 {
		return "in and out"
	}
	return d[0]
}

// release removes the pod's isolation label, and the namespace's policy
// when no other pod is isolated.
func (a *act) release(ctx context.Context) error {
	_, isolated := a.pod.Labels[IsolationLabel]
	if isolated {
		if err := a.patchMeta(ctx, "labels", map[string]*string{IsolationLabel: nil}); err != nil {
			return err
		}
	}
	others, err := a.kube.CoreV1().Pods(a.pod.Namespace).List(ctx, metav1.ListOptions{LabelSelector: IsolationLabel})
	if err != nil {
		return kubeError("list the isolated pods", err)
	}
	left := 0
	for _, p := range others.Items {
		if p.UID != a.pod.UID {
			left++
		}
	}
	policyGone := false
	if left == 0 {
		err := a.kube.NetworkingV1().NetworkPolicies(a.pod.Namespace).Delete(ctx, IsolationPolicy, metav1.DeleteOptions{DryRun: a.dryRun()})
		switch {
		case err == nil:
			policyGone = true
		case !apierrors.IsNotFound(err):
			return kubeError("delete NetworkPolicy "+IsolationPolicy, err)
		}
	}
	if !isolated {
		return a.done(policyGone, "pod %s was not isolated", a.name())
	}
	msg := fmt.Sprintf("pod %s released: label %s removed", a.name(), IsolationLabel)
	if policyGone {
		msg += ", and NetworkPolicy " + IsolationPolicy + " (no other pod of the namespace is isolated)"
	}
	return a.done(true, "%s", msg)
}

// patchMeta sets (or, for nil values, removes) labels or annotations of
// the pod with a merge patch that fails if the pod was replaced meanwhile.
func (a *act) patchMeta(ctx context.Context, field string, values map[string]*string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{field: values, "uid": a.pod.UID}})
	if err != nil {
		return &Error{Code: KubernetesError, Message: "build the patch: " + err.Error(), Err: err}
	}
	_, err = a.kube.CoreV1().Pods(a.pod.Namespace).Patch(ctx, a.pod.Name, types.MergePatchType, patch, metav1.PatchOptions{DryRun: a.dryRun()})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return &Error{Code: PodNotFound, Message: fmt.Sprintf("pod %s is gone", a.name()), Err: err}
	}
	if err != nil {
		return kubeError("patch pod "+a.name(), err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
