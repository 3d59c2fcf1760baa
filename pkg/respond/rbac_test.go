package respond_test

import (
	"context"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// asServiceAccount binds the rules of actions to a new service account,
// in ns (a Role) and cluster-wide for nodes (a ClusterRole), and returns
// a client acting as that account.
func asServiceAccount(t *testing.T, ns string, actions []respond.Action) kubernetes.Interface {
	t.Helper()
	ctx := context.Background()
	kube := apiServer.Kube
	const sa = "responder"
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}
	namespaced, cluster := respond.Rules(actions)
	if _, err := kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: sa}, Rules: namespaced}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa}, Subjects: subject,
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(cluster) > 0 {
		name := ns + "-" + sa
		if _, err := kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: cluster}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
			_ = kube.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
	cfg := rest.CopyConfig(apiServer.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// can asks the API server whether kube may do verb on resource in ns.
func can(t *testing.T, kube kubernetes.Interface, ns, group, resource, verb string) bool {
	t.Helper()
	r, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Group: group, Resource: resource, Verb: verb}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.Allowed
}

// The rights of the default actions are enough for each of them, and
// allow nothing else.
func TestRulesAreExactlyWhatTheActionsNeed(t *testing.T) {
	ns := newNamespace(t)
	other := newNamespace(t)
	ctx := context.Background()
	newPod(t, apiServer.Kube, ns, "web", fullID("feed00000000"), func(p *corev1.Pod) {
		p.OwnerReferences = controllerRef("ReplicaSet", "web")
		p.Spec.NodeName = "node-x"
	})
	kube := asServiceAccount(t, ns, respond.DefaultActions())
	// The policy allows every action: the API server is what refuses.
	r := &respond.Responder{Kube: kube, Policy: respond.Policy{Namespaces: []string{ns}}}
	for _, q := range []respond.Request{
		{Action: respond.Isolate, Pod: "web"},
		{Action: respond.Release, Pod: "web"},
		{Action: respond.Label, Pod: "web", Labels: map[string]string{"case": "3"}},
		{Action: respond.Annotate, Pod: "web", Annotations: map[string]string{"case": "3"}},
		{Action: respond.Describe, ContainerID: "feed00000000"},
	} {
		if q.Pod != "" {
			q.Namespace = ns
		}
		if res, err := r.Do(ctx, q, "sa"); err != nil {
			t.Errorf("%s with its own rights: %v", q.Action, err)
		} else if q.Action == respond.Describe && (len(res.Details.Owners) != 1 || res.Details.Owners[0].Note == "") {
			// The ReplicaSet does not exist: reading it was allowed and
			// answered not found, which the note says.
			t.Errorf("describe owners %+v", res.Details.Owners)
		}
	}
	for _, q := range []respond.Request{
		{Action: respond.Terminate, Namespace: ns, Pod: "web"},
		{Action: respond.Cordon, Namespace: ns, Pod: "web"},
	} {
		_, err := r.Do(ctx, q, "sa")
		if err == nil || respond.CodeOf(err) != respond.KubernetesError || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s without its rights: %v; want the API server's refusal", q.Action, err)
		}
	}
	for _, c := range []struct {
		ns, group, resource, verb string
		want                      bool
	}{
		{ns, "", "pods", "patch", true},
		{ns, "", "pods", "delete", false},
		{ns, "", "pods", "create", false},
		{ns, "", "pods/exec", "create", false},
		{ns, "", "secrets", "get", false},
		{ns, "", "secrets", "list", false},
		{ns, "", "configmaps", "get", false},
		{ns, "networking.k8s.io", "networkpolicies", "create", true},
		{ns, "networking.k8s.io", "networkpolicies", "update", false},
		{ns, "apps", "deployments", "get", true},
		{ns, "apps", "deployments", "patch", false},
		{other, "", "pods", "get", false},
		{other, "", "pods", "patch", false},
		{"", "", "nodes", "get", false},
		{"", "", "nodes", "patch", false},
	} {
		if got := can(t, kube, c.ns, c.group, c.resource, c.verb); got != c.want {
			t.Errorf("may %s %s.%s in %q: %v, want %v", c.verb, c.resource, c.group, c.ns, got, c.want)
		}
	}

	// With cordon and terminate: those rights, still no more.
	ns2 := newNamespace(t)
	kube = asServiceAccount(t, ns2, respond.Actions())
	for _, c := range []struct {
		ns, resource, verb string
		want               bool
	}{
		{ns2, "pods", "delete", true}, {"", "nodes", "patch", true}, {"", "nodes", "delete", false}, {"", "nodes", "list", false}, {ns2, "secrets", "get", false},
	} {
		if got := can(t, kube, c.ns, "", c.resource, c.verb); got != c.want {
			t.Errorf("all actions: may %s %s in %q: %v, want %v", c.verb, c.resource, c.ns, got, c.want)
		}
	}
}
