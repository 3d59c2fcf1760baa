package responder_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// The chart's RBAC, as install renders it, gives the responder's
// service account exactly the rights of its actions in exactly the allowed
// namespaces: checked by the API server itself, impersonating the account.
func TestChartRBACIsExactlyTheActions(t *testing.T) {
	installNS, allowed1, allowed2, other := newNamespace(t), newNamespace(t), newNamespace(t), newNamespace(t)
	kube := applyResponderRBAC(t, installNS, []string{allowed1, allowed2}, respond.DefaultActions())
	namespaced, _ := respond.Rules(respond.DefaultActions())
	for _, ns := range []string{allowed1, allowed2} {
		if got, want := rightsIn(t, kube, ns), triples(namespaced); !slices.Equal(got, want) {
			t.Errorf("rights in %s:\n got  %v\n want %v", ns, got, want)
		}
	}
	for _, ns := range []string{other, installNS, "kube-system", "default"} {
		if got := rightsIn(t, kube, ns); len(got) != 0 {
			t.Errorf("rights in %s, a namespace not allowed: %v", ns, got)
		}
	}
	for _, c := range []struct {
		ns, group, resource, verb string
		want                      bool
	}{
		{allowed1, "", "pods", "patch", true},
		{allowed1, "", "pods", "delete", false},
		{allowed1, "", "pods/exec", "create", false},
		{allowed1, "", "secrets", "get", false},
		{allowed1, "", "secrets", "list", false},
		{installNS, "", "secrets", "get", false},
		{allowed2, "networking.k8s.io", "networkpolicies", "create", true},
		{allowed2, "networking.k8s.io", "networkpolicies", "update", false},
		{other, "", "pods", "get", false},
		{"", "", "nodes", "patch", false},
		{"", "", "pods", "list", false}, // across namespaces
	} {
		if got := can(t, kube, c.ns, c.group, c.resource, c.verb); got != c.want {
			t.Errorf("may %s %s.%s in %q: %v, want %v", c.verb, c.resource, c.group, c.ns, got, c.want)
		}
	}

	// The responder acting with those rights isolates in an allowed
	// namespace.
	newPod(t, allowed2, "web", "ab12ab12ab12")
	r := startAs(t, kube, []string{allowed1, allowed2})
	if res := r.post(t, "isolate", token, map[string]any{"container_id": "ab12ab12ab12", "case_id": 5}).result(t); !res.Changed || res.Target.Namespace != allowed2 {
		t.Errorf("isolate with the chart's rights: %+v", res)
	}
}

// With every namespace and every action: one ClusterRole for the pods,
// one for the nodes, still nothing on Secrets.
func TestChartRBACAllNamespacesAllActions(t *testing.T) {
	installNS, any := newNamespace(t), newNamespace(t)
	kube := applyResponderRBAC(t, installNS, []string{respond.AllNamespaces}, respond.Actions())
	namespaced, cluster := respond.Rules(respond.Actions())
	want := triples(append(namespaced, cluster...))
	if got := rightsIn(t, kube, any); !slices.Equal(got, want) {
		t.Errorf("rights in %s:\n got  %v\n want %v", any, got, want)
	}
	for _, c := range []struct {
		ns, resource, verb string
		want               bool
	}{
		{any, "pods", "delete", true}, {"", "pods", "list", true}, {"", "nodes", "patch", true},
		{"", "nodes", "delete", false}, {"", "nodes", "list", false}, {any, "secrets", "get", false},
		{installNS, "secrets", "get", false}, {"", "secrets", "list", false}, {any, "serviceaccounts/token", "create", false},
	} {
		if got := can(t, kube, c.ns, "", c.resource, c.verb); got != c.want {
			t.Errorf("may %s %s in %q: %v, want %v", c.verb, c.resource, c.ns, got, c.want)
		}
	}
}

// applyResponderRBAC plans an install with the responder, renders it as
// --dry-run does, applies the responder release's ServiceAccount and RBAC
// objects, and returns a client acting as that service account.
func applyResponderRBAC(t *testing.T, installNS string, namespaces []string, actions []respond.Action) kubernetes.Interface {
	t.Helper()
	ctx := context.Background()
	o := install.Defaults()
	o.Namespace, o.NATSURL, o.SkipFalco = installNS, "nats://nats:4222", true
	o.PhantomURL, o.PhantomAuth = "https://soar.example.com", phantom.Auth{Token: "t"}
	o.Responder, o.ResponderNamespaces, o.ResponderActions = true, namespaces, actions
	p, err := install.NewPlan(ctx, o, install.Offline)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := helm.New(nil, nil).Render(ctx, p.Release(install.Responder).Request)
	if err != nil {
		t.Fatal(err)
	}
	kube := apiServer.Kube
	var sa string
	applied := 0
	for _, doc := range strings.Split(manifest, "\n---") {
		var head struct {
			Kind     string            `json:"kind"`
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		name := head.Metadata.Name
		var err error
		switch head.Kind {
		case "ServiceAccount":
			var obj corev1.ServiceAccount
			decode(t, doc, &obj)
			sa = obj.Namespace + ":" + obj.Name
			_, err = kube.CoreV1().ServiceAccounts(obj.Namespace).Create(ctx, &obj, metav1.CreateOptions{})
		case "Role":
			var obj rbacv1.Role
			decode(t, doc, &obj)
			_, err = kube.RbacV1().Roles(obj.Namespace).Create(ctx, &obj, metav1.CreateOptions{})
		case "RoleBinding":
			var obj rbacv1.RoleBinding
			decode(t, doc, &obj)
			_, err = kube.RbacV1().RoleBindings(obj.Namespace).Create(ctx, &obj, metav1.CreateOptions{})
		case "ClusterRole":
			var obj rbacv1.ClusterRole
			decode(t, doc, &obj)
			_, err = kube.RbacV1().ClusterRoles().Create(ctx, &obj, metav1.CreateOptions{})
			t.Cleanup(func() { _ = kube.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{}) })
		case "ClusterRoleBinding":
			var obj rbacv1.ClusterRoleBinding
			decode(t, doc, &obj)
			_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx, &obj, metav1.CreateOptions{})
			t.Cleanup(func() {
				_ = kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
			})
		default:
			continue
		}
		if err != nil {
			t.Fatalf("apply %s %s: %v", head.Kind, name, err)
		}
		applied++
	}
	if sa == "" || applied < 3 {
		t.Fatalf("the rendered release has %d RBAC objects, service account %q:\n%s", applied, sa, manifest)
	}
	return impersonate(t, sa)
}

func decode(t *testing.T, doc string, obj any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
}

// rightsIn lists what kube may do on resources in ns, as the API server
// reviews it, leaving out what any service account without a binding may
// (review its own access, read cluster trust bundles ...).
func rightsIn(t *testing.T, kube kubernetes.Interface, ns string) []string {
	t.Helper()
	baseline := reviewRules(t, impersonate(t, "rbac-test:nobody"), ns)
	return slices.DeleteFunc(reviewRules(t, kube, ns), func(r string) bool { return slices.Contains(baseline, r) })
}

func reviewRules(t *testing.T, kube kubernetes.Interface, ns string) []string {
	t.Helper()
	r, err := kube.AuthorizationV1().SelfSubjectRulesReviews().Create(context.Background(), &authorizationv1.SelfSubjectRulesReview{
		Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: ns},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	for _, rr := range r.Status.ResourceRules {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: rr.APIGroups, Resources: rr.Resources, Verbs: rr.Verbs, ResourceNames: rr.ResourceNames})
	}
	return triples(rules)
}

// impersonate is a client acting as the service account "namespace:name".
func impersonate(t *testing.T, sa string) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(apiServer.Config)
	ns, _, _ := strings.Cut(sa, ":")
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// triples flattens rules into sorted "group/resource:verb" lines.
func triples(rules []rbacv1.PolicyRule) []string {
	set := map[string]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					set[fmt.Sprintf("%s/%s:%s%v", g, res, v, r.ResourceNames)] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// can asks the API server whether kube may do verb on resource in ns.
func can(t *testing.T, kube kubernetes.Interface, ns, group, resource, verb string) bool {
	t.Helper()
	res, sub, _ := strings.Cut(resource, "/")
	r, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Group: group, Resource: res, Subresource: sub, Verb: verb}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.Allowed
}
