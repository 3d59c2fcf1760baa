package install

import (
	"context"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kfields "k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// IsolatedPod is a pod cut off the network by isolate.
type IsolatedPod struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// Case is the SOAR case it was isolated for, or "manual".
	Case string `json:"case"`
}

func (p IsolatedPod) String() string {
	return fmt.Sprintf("%s/%s (case %s)", p.Namespace, p.Pod, p.Case)
}

// Isolated lists the isolated pods of every namespace the caller may
// list pods in, sorted.
func Isolated(ctx context.Context, kube kubernetes.Interface) ([]IsolatedPod, error) {
	var out []IsolatedPod
	opts := metav1.ListOptions{LabelSelector: respond.IsolationLabel, Limit: 500}
	for {
		list, err := kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list the isolated pods: %w", err)
		}
		for _, p := range list.Items {
			out = append(out, IsolatedPod{Namespace: p.Namespace, Pod: p.Name, Case: p.Labels[respond.IsolationLabel]})
		}
		if opts.Continue = list.Continue; opts.Continue == "" {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Pod < out[j].Pod
	})
	return out, nil
}

// releaseIsolated releases every isolated pod with the caller's rights
// (respond's release, in any namespace), then deletes the isolation
// policies left where no pod is isolated any more.
func (in *Installer) releaseIsolated(ctx context.Context, pods []IsolatedPod) (released []IsolatedPod, errs []error) {
	r := &respond.Responder{Kube: in.Kube, Policy: respond.Policy{Namespaces: []string{respond.AllNamespaces}}}
	for _, p := range pods {
		if _, err := r.Do(ctx, respond.Request{Action: respond.Release, Namespace: p.Namespace, Pod: p.Pod, Reason: "kubectl falco-phantom uninstall --release-isolated"}, "kubectl falco-phantom uninstall"); err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", p, err))
			continue
		}
		released = append(released, p)
		in.progress("  released %s", p)
	}
	if err := in.deleteIsolationPolicies(ctx); err != nil {
		errs = append(errs, err)
	}
	return released, errs
}

// deleteIsolationPolicies deletes the isolation policies falco-phantom
// made in namespaces where no pod is isolated.
func (in *Installer) deleteIsolationPolicies(ctx context.Context) error {
	list, err := in.Kube.NetworkingV1().NetworkPolicies(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: kfields.OneTermEqualSelector("metadata.name", respond.IsolationPolicy).String(),
	})
	if err != nil {
		return fmt.Errorf("list the isolation policies: %w", err)
	}
	for _, np := range list.Items {
		if np.Labels[LabelManagedBy] != "falco-phantom" {
			continue // someone else's policy of that name
		}
		pods, err := in.Kube.CoreV1().Pods(np.Namespace).List(ctx, metav1.ListOptions{LabelSelector: respond.IsolationLabel, Limit: 1})
		if err != nil {
			return fmt.Errorf("list the isolated pods of %s: %w", np.Namespace, err)
		}
		if len(pods.Items) > 0 {
			continue
		}
		err = in.Kube.NetworkingV1().NetworkPolicies(np.Namespace).Delete(ctx, np.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
		}
		in.progress("  deleted NetworkPolicy %s/%s", np.Namespace, np.Name)
	}
	return nil
}
