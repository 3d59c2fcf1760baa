package install_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

// fakeCluster serves the kinds of a plain cluster (no KEDA) and answers
// access reviews with allow, except for the denied resources; it records
// what was asked.
type fakeCluster struct {
	mu     sync.Mutex
	asked  []string
	denied map[string]bool
}

func (f *fakeCluster) client() *fake.Clientset {
	kube := fake.NewClientset()
	// "Kind:resource", and a trailing "!" for a cluster-wide kind.
	res := func(gv string, names ...string) *metav1.APIResourceList {
		l := &metav1.APIResourceList{GroupVersion: gv}
		for _, n := range names {
			clusterWide := strings.HasSuffix(n, "!")
			kind, name, _ := strings.Cut(strings.TrimSuffix(n, "!"), ":")
			l.APIResources = append(l.APIResources, metav1.APIResource{Name: name, Kind: kind, Namespaced: !clusterWide, Verbs: []string{"create", "patch"}})
		}
		return l
	}
	kube.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{
		res("v1", "Secret:secrets", "ConfigMap:configmaps", "Service:services", "ServiceAccount:serviceaccounts",
			"PersistentVolumeClaim:persistentvolumeclaims", "Pod:pods", "Namespace:namespaces!"),
		res("apps/v1", "Deployment:deployments", "StatefulSet:statefulsets", "DaemonSet:daemonsets"),
		res("rbac.authorization.k8s.io/v1", "Role:roles", "RoleBinding:rolebindings", "ClusterRole:clusterroles!", "ClusterRoleBinding:clusterrolebindings!"),
		res("policy/v1", "PodDisruptionBudget:poddisruptionbudgets"),
		res("networking.k8s.io/v1", "NetworkPolicy:networkpolicies"),
	}
	kube.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		review := a.(k8stesting.CreateAction).GetObject().(*authv1.SelfSubjectAccessReview)
		attr := review.Spec.ResourceAttributes
		key := attr.Verb + " " + attr.Resource
		if attr.Group != "" {
			key += "." + attr.Group
		}
		f.mu.Lock()
		f.asked = append(f.asked, key)
		f.mu.Unlock()
		review.Status.Allowed = !f.denied[key]
		return true, review, nil
	})
	return kube
}

// Preflight asks for what the charts render, and only that: the Falco
// chart makes Roles and RoleBindings in the namespace (falcosidekick's,
// and Falco's own for the driver loader of driver auto), and nothing
// cluster-wide; a KEDA ScaledObject needs KEDA.
func TestPreflightAsksForWhatTheChartsCreate(t *testing.T) {
	t.Parallel()
	o := upstreamCharts(t)
	f := &fakeCluster{denied: map[string]bool{"create rolebindings.rbac.authorization.k8s.io": true}}
	in := &install.Installer{Helm: helm.New(nil, nil), Kube: f.client()}
	err := in.Preflight(context.Background(), o)
	if want := "missing permissions: create rolebindings.rbac.authorization.k8s.io (in namespace falco-phantom)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Preflight = %v, want %q", err, want)
	}
	for _, want := range []string{
		"create namespaces", "create secrets", "update configmaps", "create statefulsets.apps", "create persistentvolumeclaims",
		"create poddisruptionbudgets.policy", "create daemonsets.apps", "patch daemonsets.apps", "create roles.rbac.authorization.k8s.io",
		"create networkpolicies.networking.k8s.io",
	} {
		if !slices.Contains(f.asked, want) {
			t.Errorf("Preflight did not ask for %q; it asked %v", want, f.asked)
		}
	}
	for _, asked := range f.asked {
		if strings.Contains(asked, "clusterrole") || strings.HasSuffix(asked, " pods") {
			t.Errorf("Preflight asked for %q, which the charts do not create (test hooks are not installed)", asked)
		}
	}

	o.KEDA = true
	in.Kube = (&fakeCluster{}).client()
	if err := in.Preflight(context.Background(), o); err == nil || !strings.Contains(err.Error(), "serves no keda.sh/v1alpha1 ScaledObject (install KEDA first") {
		t.Errorf("Preflight with --keda on a cluster without KEDA = %v", err)
	}
}

// The responder's Roles are asked for in the namespaces it acts in, where
// its chart puts them.
func TestPreflightAsksForTheResponderRolesWhereTheyGo(t *testing.T) {
	t.Parallel()
	o := install.Defaults()
	o.MockPhantom, o.NATSURL, o.SkipFalco = true, "nats://nats:4222", true
	o.Responder, o.ResponderNamespaces = true, []string{"shop", "web"}
	f := &fakeCluster{denied: map[string]bool{"create roles.rbac.authorization.k8s.io": true}}
	kube := f.client()
	for _, ns := range []string{"shop", "web"} {
		if _, err := kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	err := (&install.Installer{Helm: helm.New(nil, nil), Kube: kube}).Preflight(context.Background(), o)
	want := "missing permissions: create roles.rbac.authorization.k8s.io (in namespace shop), create roles.rbac.authorization.k8s.io (in namespace web)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Preflight = %v, want %q", err, want)
	}
}
