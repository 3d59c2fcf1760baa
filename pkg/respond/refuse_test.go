package respond_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// Every refusal is a typed error with a message that says what to fix,
// is audited, and changes nothing.
func TestRefusalsAreClearAuditedAndChangeNothing(t *testing.T) {
	ns := newNamespace(t)
	other := newNamespace(t)
	ctx := context.Background()
	newPod(t, apiServer.Kube, ns, "web", fullID("abcdef123456"))
	newPod(t, apiServer.Kube, other, "web", "")
	newPod(t, apiServer.Kube, ns, "lonely", "")
	rec := &recorder{}
	r := &respond.Responder{Kube: apiServer.Kube, Audit: rec, Policy: respond.Policy{
		Namespaces: []string{ns}, Protected: respond.ProtectedNamespaces("falco-phantom"),
		Actions: []respond.Action{respond.Isolate, respond.Label, respond.Terminate, respond.Describe},
	}}
	star := &respond.Responder{Kube: apiServer.Kube, Audit: rec, Policy: respond.Policy{Namespaces: []string{"*"}, Protected: respond.ProtectedNamespaces("falco-phantom")}}
	before := getPod(t, ns, "web").ResourceVersion

	for _, c := range []struct {
		name string
		r    *respond.Responder
		q    respond.Request
		code respond.Code
		says string
	}{
		{"no target", r, respond.Request{Action: respond.Isolate}, respond.InvalidInput, "no target"},
		{"pod without namespace", r, respond.Request{Action: respond.Isolate, Pod: "web"}, respond.InvalidInput, "without a namespace"},
		{"malformed pod name", r, respond.Request{Action: respond.Isolate, Namespace: ns, Pod: "Web_1; rm -rf"}, respond.InvalidInput, "not a pod name"},
		{"malformed namespace", r, respond.Request{Action: respond.Isolate, Namespace: "../etc", Pod: "web"}, respond.InvalidInput, "not a namespace name"},
		{"unknown pod", r, respond.Request{Action: respond.Isolate, Namespace: ns, Pod: "nope"}, respond.PodNotFound, "nope not found"},
		{"not a container id", r, respond.Request{Action: respond.Isolate, ContainerID: "xyz"}, respond.InvalidInput, "not a container id"},
		{"container id of nothing", r, respond.Request{Action: respond.Isolate, ContainerID: "0123456789ab"}, respond.PodNotFound, "runs container 0123456789ab"},
		{"container not in the pod", r, respond.Request{Action: respond.Isolate, Namespace: ns, Pod: "lonely", ContainerID: "abcdef123456"}, respond.InvalidInput, "runs no container"},
		{"namespace not allowed", r, respond.Request{Action: respond.Isolate, Namespace: other, Pod: "web"}, respond.NamespaceNotAllowed, "actions may happen in " + ns},
		{"kube-system under *", star, respond.Request{Action: respond.Isolate, Namespace: "kube-system", Pod: "coredns"}, respond.NamespaceNotAllowed, "every namespace but falco-phantom and kube-system"},
		{"install namespace under *", star, respond.Request{Action: respond.Isolate, Namespace: "falco-phantom", Pod: "nats-0"}, respond.NamespaceNotAllowed, "not allowed"},
		{"action not allowed", r, respond.Request{Action: respond.Cordon, Namespace: ns, Pod: "web"}, respond.ActionNotAllowed, "allowed actions are isolate, label, terminate, describe"},
		{"unknown action", r, respond.Request{Action: "explode", Namespace: ns, Pod: "web"}, respond.UnknownAction, `unknown action "explode"`},
		{"field of another action", r, respond.Request{Action: respond.Isolate, Namespace: ns, Pod: "web", Labels: map[string]string{"a": "b"}}, respond.InvalidInput, "labels is not a field of isolate"},
		{"no labels", r, respond.Request{Action: respond.Label, Namespace: ns, Pod: "web"}, respond.InvalidInput, "no labels given"},
		{"bad label key", r, respond.Request{Action: respond.Label, Namespace: ns, Pod: "web", Labels: map[string]string{"a b": "c"}}, respond.InvalidInput, `label key "a b"`},
		{"bad label value", r, respond.Request{Action: respond.Label, Namespace: ns, Pod: "web", Labels: map[string]string{"a": "b c"}}, respond.InvalidInput, `value "b c"`},
		{"isolation label by hand", r, respond.Request{Action: respond.Label, Namespace: ns, Pod: "web", Labels: map[string]string{respond.IsolationLabel + "-": ""}}, respond.InvalidInput, "kept by isolate and release"},
		{"negative case", r, respond.Request{Action: respond.Isolate, Namespace: ns, Pod: "web", CaseID: -1}, respond.InvalidInput, "case_id -1"},
		{"huge reason", r, respond.Request{Action: respond.Isolate, Namespace: ns, Pod: "web", Reason: strings.Repeat("x", 2000)}, respond.InvalidInput, "reason: at most 1024 bytes"},
		{"standalone pod", r, respond.Request{Action: respond.Terminate, Namespace: ns, Pod: "lonely"}, respond.StandalonePod, "allow_standalone"},
		{"not scheduled", star, respond.Request{Action: respond.Cordon, Namespace: ns, Pod: "web"}, respond.NotScheduled, "not on a node"},
		{"bad taint", star, respond.Request{Action: respond.Cordon, Namespace: ns, Pod: "web", Taint: "compromised"}, respond.InvalidInput, "key[=value]:Effect"},
		{"bad taint effect", star, respond.Request{Action: respond.Cordon, Namespace: ns, Pod: "web", Taint: "a=b:Never"}, respond.InvalidInput, "taint effect"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := rec.count()
			res, err := c.r.Do(ctx, c.q, "test")
			if err == nil {
				t.Fatalf("done: %+v; want %s", res, c.code)
			}
			if got := respond.CodeOf(err); got != c.code || !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %s %q; want %s saying %q", got, err, c.code, c.says)
			}
			if rec.count() != n+1 {
				t.Fatalf("%d audit records for one refused request", rec.count()-n)
			}
			if a := rec.last(t); a.Outcome != respond.OutcomeRefused || a.Code != c.code {
				t.Errorf("audited as %s/%s, want refused/%s", a.Outcome, a.Code, c.code)
			}
		})
	}
	if getPod(t, ns, "web").ResourceVersion != before {
		t.Error("a refused request changed the pod")
	}
	if _, err := apiServer.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{}); err == nil {
		t.Error("a refused request made the isolation policy")
	}
}

func TestContainerIDFindsItsPod(t *testing.T) {
	ns := newNamespace(t)
	other := newNamespace(t)
	ctx := context.Background()
	newPod(t, apiServer.Kube, ns, "web", fullID("5e5e5e5e5e5e11"))
	newPod(t, apiServer.Kube, ns, "db", fullID("5e5e5e5e5e5e22"))
	newPod(t, apiServer.Kube, other, "hidden", fullID("77aa77aa77aa"))
	r, _ := responder(ns)

	for _, id := range []string{"5E5E5E5E5E5E11", fullID("5e5e5e5e5e5e11"), "containerd://" + fullID("5e5e5e5e5e5e11")} {
		res, err := r.Do(ctx, respond.Request{Action: respond.Describe, ContainerID: id}, "test")
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if res.Target.Pod != "web" || res.Target.ContainerID != "5e5e5e5e5e5e" {
			t.Errorf("%s resolved to %+v, want pod web, container 5e5e5e5e5e5e", id, res.Target)
		}
	}
	_, err := r.Do(ctx, respond.Request{Action: respond.Describe, ContainerID: "5e5e5e5e5e5e"}, "test")
	if respond.CodeOf(err) != respond.AmbiguousContainer || !strings.Contains(err.Error(), ns+"/db") || !strings.Contains(err.Error(), ns+"/web") {
		t.Errorf("12 digits shared by two pods: %v; want ambiguous, naming both", err)
	}
	// A pod outside the allowed namespaces is not found, even by a
	// responder that could read it.
	if _, err := r.Do(ctx, respond.Request{Action: respond.Describe, ContainerID: "77aa77aa77aa"}, "test"); respond.CodeOf(err) != respond.PodNotFound {
		t.Errorf("container of a pod in a namespace not allowed: %v, want pod_not_found", err)
	}
	star := &respond.Responder{Kube: apiServer.Kube, Policy: respond.Policy{Namespaces: []string{"*"}}}
	if res, err := star.Do(ctx, respond.Request{Action: respond.Describe, ContainerID: "77aa77aa77aa"}, "test"); err != nil || res.Target.Pod != "hidden" {
		t.Errorf("all namespaces: %+v, %v; want the pod hidden", res, err)
	}
}
