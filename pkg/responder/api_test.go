package responder_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/responder"
)

// An isolate over HTTPS labels the pod, makes the policy and answers the
// Result; the same request again changes nothing and says so.
func TestIsolateOverHTTPS(t *testing.T) {
	ns := newNamespace(t)
	newPod(t, ns, "web", "a1b2c3d4e5f6")
	r := start(t, []string{ns})
	ctx := context.Background()
	body := map[string]any{"container_id": "a1b2c3d4e5f6", "case_id": 42, "reason": "Terminal shell in container", "requested_by": "playbook isolate-shell"}

	res := r.post(t, "isolate", token, body).result(t)
	if !res.Changed || res.Action != respond.Isolate || res.Target.Namespace != ns || res.Target.Pod != "web" || res.Target.ContainerID != "a1b2c3d4e5f6" || res.CaseID != 42 || res.RequestID == "" {
		t.Errorf("first isolate: %+v", res)
	}
	if got := getPod(t, ns, "web").Labels[respond.IsolationLabel]; got != "42" {
		t.Errorf("pod label %s=%q, want 42", respond.IsolationLabel, got)
	}
	np, err := apiServer.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{})
	if err != nil || len(np.Spec.Ingress)+len(np.Spec.Egress) != 0 || len(np.Spec.PolicyTypes) != 2 {
		t.Errorf("isolation policy %+v, %v; want one denying both ways", np, err)
	}
	audit := r.auditOf(t, res.RequestID)
	if audit["outcome"] != "done" || audit["requested_by"] != "playbook isolate-shell" || !strings.HasPrefix(audit["actor"].(string), "127.0.0.1:") {
		t.Errorf("audit of the isolate: %v", audit)
	}

	version := getPod(t, ns, "web").ResourceVersion
	again := r.post(t, "isolate", token, body).result(t)
	if again.Changed || !strings.Contains(again.Message, "already isolated") || again.RequestID == res.RequestID {
		t.Errorf("second isolate: %+v; want unchanged, a new request id", again)
	}
	if getPod(t, ns, "web").ResourceVersion != version {
		t.Error("the second isolate changed the pod")
	}
	if a := r.auditOf(t, again.RequestID); a["outcome"] != "unchanged" {
		t.Errorf("audit of the second isolate: %v", a)
	}

	// A dry run of release says what it would do and leaves the label.
	dry := r.post(t, "release", token, map[string]any{"namespace": ns, "pod": "web", "dry_run": true}).result(t)
	if !dry.DryRun || !dry.Changed || !strings.HasPrefix(dry.Message, "dry run") || getPod(t, ns, "web").Labels[respond.IsolationLabel] != "42" {
		t.Errorf("dry-run release: %+v", dry)
	}
	rel := r.post(t, "release", token, map[string]any{"namespace": ns, "pod": "web", "case_id": 42}).result(t)
	if !rel.Changed {
		t.Errorf("release: %+v", rel)
	}
	if _, err := apiServer.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the policy outlived the last isolated pod: %v", err)
	}
}

// Every refusal is a typed error with its status, is audited, and changes
// nothing.
func TestRefusalsAreTypedAuditedAndChangeNothing(t *testing.T) {
	ns := newNamespace(t)
	other := newNamespace(t)
	newPod(t, ns, "web", "0badc0ffee00")
	newPod(t, other, "web", "0badc0ffee11")
	r := start(t, []string{ns})
	before := getPod(t, ns, "web").ResourceVersion
	otherBefore := getPod(t, other, "web").ResourceVersion
	ok := map[string]any{"namespace": ns, "pod": "web", "case_id": 7}

	for _, c := range []struct {
		name, action, bearer string
		body                 any
		status               int
		code                 respond.Code
		says                 string
	}{
		{"no token", "isolate", "", ok, 401, respond.Unauthorized, "no bearer token"},
		{"wrong token", "isolate", token + "x", ok, 401, respond.Unauthorized, "not the responder's"},
		{"token of another length", "isolate", "short", ok, 401, respond.Unauthorized, "not the responder's"},
		{"oversized body", "isolate", token, `{"namespace":"` + ns + `","pod":"web","reason":"` + strings.Repeat("x", responder.MaxBody) + `"}`, 413, respond.TooLarge, "larger than 64 KiB"},
		{"malformed JSON", "isolate", token, `{"namespace": "` + ns + `", "pod": `, 400, respond.InvalidInput, "not a request"},
		{"unknown field", "isolate", token, map[string]any{"namespace": ns, "pod": "web", "force": true}, 400, respond.InvalidInput, `unknown field "force"`},
		{"action in the body", "isolate", token, map[string]any{"namespace": ns, "pod": "web", "action": "terminate"}, 400, respond.InvalidInput, `unknown field "action"`},
		{"wrong type", "isolate", token, map[string]any{"namespace": ns, "pod": "web", "case_id": "seven"}, 400, respond.InvalidInput, "case_id must be a int64"},
		{"two objects", "isolate", token, `{"namespace":"` + ns + `","pod":"web"} {}`, 400, respond.InvalidInput, "more than one JSON value"},
		{"empty body", "isolate", token, "", 400, respond.InvalidInput, "body is empty"},
		{"bad pod name", "isolate", token, map[string]any{"namespace": ns, "pod": "Web; rm -rf /"}, 400, respond.InvalidInput, "not a pod name"},
		{"namespace not allowed", "isolate", token, map[string]any{"namespace": other, "pod": "web"}, 403, respond.NamespaceNotAllowed, "namespace " + other + " is not allowed"},
		{"protected namespace", "isolate", token, map[string]any{"namespace": "kube-system", "pod": "coredns"}, 403, respond.NamespaceNotAllowed, "not allowed"},
		{"action not allowed", "terminate", token, ok, 403, respond.ActionNotAllowed, "terminate is not allowed"},
		{"unknown action", "explode", token, ok, 404, respond.UnknownAction, `unknown action "explode"`},
		{"pod gone", "isolate", token, map[string]any{"namespace": ns, "pod": "gone"}, 404, respond.PodNotFound, "gone not found"},
		{"container of nothing", "isolate", token, map[string]any{"container_id": "ffffffffffff"}, 404, respond.PodNotFound, "runs container ffffffffffff"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := r.post(t, c.action, c.bearer, c.body)
			id, code, msg := a.errorOf(t)
			if a.status != c.status || code != c.code || !strings.Contains(msg, c.says) {
				t.Errorf("answer %d %s %q; want %d %s saying %q", a.status, code, msg, c.status, c.code, c.says)
			}
			if a.header.Get("X-Request-Id") != id {
				t.Errorf("X-Request-Id %q, body's request_id %q", a.header.Get("X-Request-Id"), id)
			}
			if c.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: %v", a.header)
			}
			audit := r.auditOf(t, id)
			if audit["outcome"] != "refused" || audit["code"] != string(c.code) || audit["level"] != "WARN" {
				t.Errorf("audited as %v", audit)
			}
		})
	}
	if getPod(t, ns, "web").ResourceVersion != before || getPod(t, other, "web").ResourceVersion != otherBefore {
		t.Error("a refused request changed a pod")
	}
	for _, n := range []string{ns, other} {
		if _, err := apiServer.Kube.NetworkingV1().NetworkPolicies(n).Get(context.Background(), respond.IsolationPolicy, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a refused request made the isolation policy in %s: %v", n, err)
		}
	}
	// Other methods are refused the same way.
	if a := r.get(t, "/v1/actions/isolate"); a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "POST" {
		t.Errorf("GET of an action: %d %v", a.status, a.header)
	}
}

// Over the rate limit: 429 with Retry-After, audited, nothing done; the
// limit frees up again.
func TestRateLimit(t *testing.T) {
	ns := newNamespace(t)
	newPod(t, ns, "web", "5ca1ab1e0000")
	r := start(t, []string{ns}, func(c *responder.Config) { c.Rate, c.Burst = 0.5, 2 })
	for i := range 2 {
		if a := r.post(t, "describe", token, map[string]any{"namespace": ns, "pod": "web"}); a.status != 200 {
			t.Fatalf("request %d within the burst: %d %s", i+1, a.status, a.body)
		}
	}
	a := r.post(t, "isolate", token, map[string]any{"namespace": ns, "pod": "web", "case_id": 3})
	id, code, msg := a.errorOf(t)
	if a.status != http.StatusTooManyRequests || code != respond.RateLimited || !strings.Contains(msg, "rate limit") {
		t.Fatalf("over the limit: %d %s %q", a.status, code, msg)
	}
	if secs, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || secs < 1 || secs > 2 {
		t.Errorf("Retry-After %q, want 1 or 2 seconds", a.header.Get("Retry-After"))
	}
	if audit := r.auditOf(t, id); audit["code"] != "rate_limited" || audit["action"] != "isolate" {
		t.Errorf("audit: %v", audit)
	}
	if _, isolated := getPod(t, ns, "web").Labels[respond.IsolationLabel]; isolated {
		t.Error("a request over the rate limit isolated the pod")
	}
	// Unauthenticated requests do not spend the limit of the ones that
	// hold the token, and are not told about it.
	if a := r.post(t, "isolate", "", map[string]any{}); a.status != http.StatusUnauthorized {
		t.Errorf("no token while over the limit: %d, want 401", a.status)
	}
}
