package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// access is one permission install needs.
type access struct {
	verb, group, resource string
	// clusterWide is true for cluster-scoped resources.
	clusterWide bool
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	return a.verb + " " + r
}

// needs lists the permissions an install with o needs.
func (o *Options) needs(namespaceExists bool) []access {
	var out []access
	if !namespaceExists {
		out = append(out, access{"create", "", "namespaces", true})
	}
	for _, r := range []struct{ group, resource string }{
		{"", "secrets"}, {"", "configmaps"}, {"", "services"}, {"", "serviceaccounts"},
		{"apps", "deployments"}, {"networking.k8s.io", "networkpolicies"}, {"policy", "poddisruptionbudgets"},
	} {
		out = append(out, access{"create", r.group, r.resource, false}, access{"update", r.group, r.resource, false})
	}
	if o.NATSURL == "" || o.MockPhantom {
		out = append(out, access{"create", "", "persistentvolumeclaims", false})
	}
	if o.NATSURL == "" {
		out = append(out, access{"create", "apps", "statefulsets", false})
	}
	if !o.SkipFalco {
		out = append(out,
			access{"create", "apps", "daemonsets", false},
			access{"create", "rbac.authorization.k8s.io", "clusterroles", true},
			access{"create", "rbac.authorization.k8s.io", "clusterrolebindings", true})
	}
	if o.KEDA {
		out = append(out, access{"create", "keda.sh", "scaledobjects", false})
	}
	return out
}

// Preflight checks, before anything is changed, that the cluster answers
// and that the current user may create what install creates. Each problem
// is reported in one line saying what to fix.
func Preflight(ctx context.Context, kube kubernetes.Interface, o Options) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := kube.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error(); err != nil {
		return fmt.Errorf("cannot reach the cluster: %w (check --context/--kubeconfig and that the API server is up)", err)
	}
	_, err := kube.CoreV1().Namespaces().Get(ctx, o.Namespace, metav1.GetOptions{})
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
		return fmt.Errorf("look up namespace %s: %w", o.Namespace, err)
	}
	var denied []string
	for _, a := range o.needs(exists) {
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authv1.ResourceAttributes{Verb: a.verb, Group: a.group, Resource: a.resource},
		}}
		if !a.clusterWide {
			review.Spec.ResourceAttributes.Namespace = o.Namespace
		}
		res, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("check permissions: %w", err)
		}
		if !res.Status.Allowed {
			where := "in namespace " + o.Namespace
			if a.clusterWide {
				where = "cluster-wide"
			}
			denied = append(denied, a.String()+" ("+where+")")
		}
	}
	if len(denied) > 0 {
		return errors.New("missing permissions: " + strings.Join(denied, ", ") +
			": ask a cluster admin, or use a --context with more rights")
	}
	return nil
}
