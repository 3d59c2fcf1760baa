package install

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// access is one permission install needs.
type access struct {
	verb, group, resource string
	// clusterWide is true for cluster-scoped resources.
	clusterWide bool
	// namespace is where, when not the install namespace.
	namespace string
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	return a.verb + " " + r
}

// needs lists the permissions applying p needs.
func (p *Plan) needs() []access {
	var out []access
	if p.CreateNamespace {
		out = append(out, access{"create", "", "namespaces", true, ""})
	}
	for _, r := range []struct{ group, resource string }{
		{"", "secrets"}, {"", "configmaps"}, {"", "services"}, {"", "serviceaccounts"},
		{"apps", "deployments"}, {"networking.k8s.io", "networkpolicies"}, {"policy", "poddisruptionbudgets"},
	} {
		out = append(out, access{"create", r.group, r.resource, false, ""}, access{"update", r.group, r.resource, false, ""})
	}
	if p.Release(NATS) != nil || p.Release(MockPhantom) != nil {
		out = append(out, access{"create", "", "persistentvolumeclaims", false, ""})
	}
	if p.Release(NATS) != nil {
		out = append(out, access{"create", "apps", "statefulsets", false, ""})
	}
	if p.Release(Falco) != nil {
		out = append(out,
			access{"create", "apps", "daemonsets", false, ""},
			access{"create", "rbac.authorization.k8s.io", "clusterroles", true, ""},
			access{"create", "rbac.authorization.k8s.io", "clusterrolebindings", true, ""})
	}
	if fw := p.Release(Forwarder); fw != nil && fw.Request.Values["keda"] != nil {
		out = append(out, access{"create", "keda.sh", "scaledobjects", false, ""})
	}
	if r := p.Record.Responder; r != nil && p.Release(Responder) != nil {
		out = append(out, responderNeeds(r)...)
	}
	return out
}

// responderNeeds are the rights granting the responder's own: a
// ClusterRole for every namespace and for nodes, a Role in each allowed
// namespace otherwise. The API server also refuses to grant rights the
// user does not hold (unless they may escalate).
func responderNeeds(r *ResponderState) []access {
	const rbac = "rbac.authorization.k8s.io"
	_, cluster := respond.Rules(r.Actions)
	var out []access
	if slices.Contains(r.Namespaces, respond.AllNamespaces) || len(cluster) > 0 {
		out = append(out, access{"create", rbac, "clusterroles", true, ""}, access{"create", rbac, "clusterrolebindings", true, ""})
	}
	if !slices.Contains(r.Namespaces, respond.AllNamespaces) {
		for _, ns := range r.Namespaces {
			out = append(out, access{"create", rbac, "roles", false, ns}, access{"create", rbac, "rolebindings", false, ns})
		}
	}
	return out
}

// Preflight checks, before anything is read or changed, that the current
// user may create what installing o creates. Each problem is reported in
// one line saying what to fix. It plans o knowing only whether the
// namespace exists: reading the Secrets may itself be forbidden.
func Preflight(ctx context.Context, kube kubernetes.Interface, o Options) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	p, err := NewPlan(ctx, o, namespaceOnly{online{kube}})
	if err != nil {
		return err
	}
	var denied []string
	for _, a := range p.needs() {
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authv1.ResourceAttributes{Verb: a.verb, Group: a.group, Resource: a.resource},
		}}
		ns := p.Namespace
		if a.namespace != "" {
			ns = a.namespace
		}
		if !a.clusterWide {
			review.Spec.ResourceAttributes.Namespace = ns
		}
		res, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("check permissions: %w", err)
		}
		if !res.Status.Allowed {
			where := "in namespace " + ns
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

// namespaceOnly asks the cluster whether the namespace exists, and nothing
// else.
type namespaceOnly struct{ online }

func (namespaceOnly) Secret(context.Context, string, string) (*corev1.Secret, error) {
	return nil, ErrNotLookedUp
}

func (namespaceOnly) Record(context.Context, string) (*State, error) { return nil, nil }
