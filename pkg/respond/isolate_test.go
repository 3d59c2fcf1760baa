package respond_test

import (
	"context"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

func TestIsolateIsIdempotentAndReleaseUndoesIt(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	newPod(t, apiServer.Kube, ns, "web", "")
	newPod(t, apiServer.Kube, ns, "db", "")
	r, rec := responder(ns)

	res, err := r.Do(ctx, respond.Request{Action: respond.Isolate, Namespace: ns, Pod: "web", CaseID: 42, Reason: "Terminal shell in container"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Target.Pod != "web" || res.Target.Namespace != ns {
		t.Errorf("first isolate: %+v, want changed, target %s/web", res, ns)
	}
	if got := getPod(t, ns, "web").Labels[respond.IsolationLabel]; got != "42" {
		t.Errorf("isolation label %q, want the case id 42", got)
	}
	np, err := apiServer.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no isolation policy after isolate: %v", err)
	}
	if len(np.Spec.Ingress) != 0 || len(np.Spec.Egress) != 0 || len(np.Spec.PolicyTypes) != 2 {
		t.Errorf("policy %+v: want both directions and no rule (deny all)", np.Spec)
	}
	sel, _ := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if !sel.Matches(labelsOf(getPod(t, ns, "web").Labels)) || sel.Matches(labelsOf(getPod(t, ns, "db").Labels)) {
		t.Errorf("policy selector %s: want it to select the isolated pod only", sel)
	}
	if a := rec.last(t); a.Outcome != respond.OutcomeDone || a.CaseID != 42 || a.Target.Pod != "web" || a.Actor != "test" {
		t.Errorf("audit record %+v", a)
	}

	// Again, for another case: nothing changes, the first case is kept.
	before := getPod(t, ns, "web").ResourceVersion
	res, err = r.Do(ctx, respond.Request{Action: respond.Isolate, Namespace: ns, Pod: "web", CaseID: 43}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || getPod(t, ns, "web").ResourceVersion != before || !strings.Contains(res.Message, "already isolated") {
		t.Errorf("second isolate: changed %v, message %q, pod changed %v; want nothing changed", res.Changed, res.Message, getPod(t, ns, "web").ResourceVersion != before)
	}
	if a := rec.last(t); a.Outcome != respond.OutcomeUnchanged {
		t.Errorf("second isolate audited as %s, want unchanged", a.Outcome)
	}

	// Two isolated pods: releasing one keeps the policy for the other.
	if _, err := r.Do(ctx, respond.Request{Action: respond.Isolate, Namespace: ns, Pod: "db"}, "test"); err != nil {
		t.Fatal(err)
	}
	if v := getPod(t, ns, "db").Labels[respond.IsolationLabel]; v != "manual" {
		t.Errorf("isolation without a case: label %q, want manual", v)
	}
	res, err = r.Do(ctx, respond.Request{Action: respond.Release, Namespace: ns, Pod: "web"}, "test")
	if err != nil || !res.Changed {
		t.Fatalf("release: %+v, %v", res, err)
	}
	if _, ok := getPod(t, ns, "web").Labels[respond.IsolationLabel]; ok {
		t.Error("label still on after release")
	}
	if _, err := apiServer.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{}); err != nil {
		t.Errorf("policy gone while db is still isolated: %v", err)
	}
	res, err = r.Do(ctx, respond.Request{Action: respond.Release, Namespace: ns, Pod: "web"}, "test")
	if err != nil || res.Changed {
		t.Errorf("second release: %+v, %v; want unchanged", res, err)
	}
	// The last one: the policy goes too.
	if _, err := r.Do(ctx, respond.Request{Action: respond.Release, Namespace: ns, Pod: "db"}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := apiServer.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("policy after the last release: %v, want not found", err)
	}
}

func TestIsolateWarnsOfPoliciesThatLetTrafficThrough(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	newPod(t, apiServer.Kube, ns, "web", "")
	allow := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-web", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	if _, err := apiServer.Kube.NetworkingV1().NetworkPolicies(ns).Create(ctx, allow, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r, _ := responder(ns)
	res, err := r.Do(ctx, respond.Request{Action: respond.Isolate, Namespace: ns, Pod: "web"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "allow-web") || !strings.Contains(res.Warnings[0], "in") {
		t.Errorf("warnings %q: want one naming allow-web, which lets traffic in", res.Warnings)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	newPod(t, apiServer.Kube, ns, "web", "", func(p *corev1Pod) { p.OwnerReferences = controllerRef("ReplicaSet", "web-1") })
	r, rec := responder(ns)
	before := getPod(t, ns, "web").ResourceVersion
	for _, q := range []respond.Request{
		{Action: respond.Isolate},
		{Action: respond.Label, Labels: map[string]string{"case": "1"}},
		{Action: respond.Annotate, Annotations: map[string]string{"example.com/case": "1"}},
		{Action: respond.Terminate},
	} {
		q.Namespace, q.Pod, q.DryRun = ns, "web", true
		res, err := r.Do(ctx, q, "test")
		if err != nil {
			t.Fatalf("%s dry run: %v", q.Action, err)
		}
		if !res.Changed || !res.DryRun || !strings.HasPrefix(res.Message, "dry run: would be") {
			t.Errorf("%s dry run: %+v; want it to say what would change", q.Action, res)
		}
		if !rec.last(t).DryRun {
			t.Errorf("%s dry run not audited as one", q.Action)
		}
	}
	if p := getPod(t, ns, "web"); p.ResourceVersion != before || p.DeletionTimestamp != nil {
		t.Error("a dry run changed the pod")
	}
	if _, err := apiServer.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a dry run of isolate left a policy: %v", err)
	}
}
