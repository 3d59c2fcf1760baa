package install

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// The files of the mock SOAR's playbooks, as its chart mounts them.
const (
	MockPlaybooksFile      = "/etc/mockphantom/playbooks.yaml"
	mockResponderTokenFile = "/etc/mockphantom/responder/token"
	mockResponderCAFile    = "/etc/mockphantom/responder/ca.crt"
	// MockIsolatePlaybook is the playbook the mock runs with the responder.
	MockIsolatePlaybook = "isolate on Terminal shell in container"
)

func (s *settings) responderValues() (map[string]any, error) {
	namespaced, cluster := respond.Rules(s.ResponderActions)
	rules, err := plain(namespaced)
	if err != nil {
		return nil, err
	}
	clusterRules, err := plain(cluster)
	if err != nil {
		return nil, err
	}
	phantom := map[string]any{
		"url": s.phantomURL, "verifySSL": !s.InsecureSkipTLSVerify, "existingSecret": s.credentialsSecret, "auth": s.forwarderAuth(),
	}
	if s.caSecret != "" {
		phantom["caSecret"] = s.caSecret
	}
	return map[string]any{
		"image":     map[string]any{"registry": s.imageRegistry(), "repository": images.ResponderRepo, "tag": s.ImageTag},
		"responder": map[string]any{"namespaces": anyList(s.ResponderNamespaces), "actions": anyList(s.ResponderActions)},
		"tls":       map[string]any{"secret": s.responderTLS},
		"token":     map[string]any{"secret": SecretResponderToken},
		"phantom":   phantom,
		"rbac":      map[string]any{"rules": rules, "clusterRules": clusterRules},
		"networkPolicy": map[string]any{
			"enabled": true, "soarPorts": []any{soarPort(s.phantomURL)},
		},
	}, nil
}

// mockPlaybooks wires the mock SOAR to the responder: one playbook that
// isolates the pod of a new "Terminal shell in container" case. Nil
// without the responder, or when it may not isolate.
func (s *settings) mockPlaybooks() map[string]any {
	if !s.Responder || !slices.Contains(s.ResponderActions, respond.Isolate) {
		return nil
	}
	rule := map[string]any{
		"name":   MockIsolatePlaybook,
		"match":  map[string]any{"rule": "Terminal shell in container"},
		"action": string(respond.Isolate),
		"responder": map[string]any{
			"url": ResponderURL(s.Namespace), "token_file": mockResponderTokenFile, "ca_file": mockResponderCAFile,
		},
	}
	return map[string]any{
		"rules":     []any{rule},
		"responder": map[string]any{"tokenSecret": SecretResponderToken, "tlsSecret": s.responderTLS},
	}
}

// soarPort is the port SOAR serves on, for the responder's egress policy.
func soarPort(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		return 443
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscan(p, &n); err == nil {
			return n
		}
	}
	if u.Scheme == "http" {
		return 80
	}
	return 443
}

// plain turns typed values into the plain maps and lists Helm values are.
func plain(v any) ([]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out []any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func anyList[T ~string](list []T) []any {
	out := make([]any, len(list))
	for i, v := range list {
		out[i] = string(v)
	}
	return out
}
