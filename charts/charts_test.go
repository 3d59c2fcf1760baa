package charts_test

import (
	"context"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/charts"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// The forwarder chart, used on its own, refuses URLs with credentials in
// them: they would be stored in clear in the Deployment.
func TestForwarderChartRefusesCredentialsInURLs(t *testing.T) {
	t.Parallel()
	render := func(phantomURL, natsURL string) (string, error) {
		return helm.New(nil, nil).Render(context.Background(), helm.Request{
			Name: "falco-phantom-forwarder", Namespace: "falco-phantom",
			Chart: helm.Chart{Files: charts.Forwarder()},
			Values: map[string]any{
				"phantom": map[string]any{"url": phantomURL, "existingSecret": "soar"},
				"nats":    map[string]any{"url": natsURL},
			},
		})
	}
	if _, err := render("https://soar.example.com", "nats://nats:4222"); err != nil {
		t.Fatalf("plain URLs: %v", err)
	}
	for _, urls := range [][2]string{
		{"https://admin:s3cret@soar.example.com", "nats://nats:4222"},
		{"https://soar.example.com", "nats://user:s3cret@nats:4222"},
	} {
		_, err := render(urls[0], urls[1])
		if err == nil || !strings.Contains(err.Error(), "must not hold credentials") {
			t.Errorf("%v: err %v, want a refusal", urls, err)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the refusal repeats the password: %v", err)
		}
	}
}

// The responder chart's default rights are those pkg/respond says the
// default actions need, so that the chart used on its own works.
func TestResponderChartDefaultRulesAreTheDefaultActions(t *testing.T) {
	t.Parallel()
	b, err := fs.ReadFile(charts.Responder(), "values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Responder struct {
			Actions []respond.Action `json:"actions"`
		} `json:"responder"`
		RBAC struct {
			Rules        []rbacv1.PolicyRule `json:"rules"`
			ClusterRules []rbacv1.PolicyRule `json:"clusterRules"`
		} `json:"rbac"`
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	namespaced, cluster := respond.Rules(respond.DefaultActions())
	if !slices.Equal(values.Responder.Actions, respond.DefaultActions()) ||
		!reflect.DeepEqual(values.RBAC.Rules, namespaced) || len(values.RBAC.ClusterRules) != len(cluster) {
		t.Errorf("values.yaml: actions %v rules %+v cluster %+v\nwant %v %+v %+v", values.Responder.Actions, values.RBAC.Rules, values.RBAC.ClusterRules,
			respond.DefaultActions(), namespaced, cluster)
	}
}

// A list of namespaces gives a Role in each; "*" one ClusterRole; the
// chart refuses to run without its Secrets.
func TestResponderChartRBAC(t *testing.T) {
	t.Parallel()
	render := func(values map[string]any) (string, error) {
		return helm.New(nil, nil).Render(context.Background(), helm.Request{
			Name: "falco-phantom-responder", Namespace: "falco-phantom", Chart: helm.Chart{Files: charts.Responder()}, Values: values,
		})
	}
	out, err := render(map[string]any{"responder": map[string]any{"namespaces": []any{"shop", "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(t, out); k["Role"] != 2 || k["RoleBinding"] != 2 || k["ClusterRole"] != 0 ||
		!strings.Contains(out, "namespace: shop") || !strings.Contains(out, "namespace: web") {
		t.Errorf("two namespaces:\n%s", out)
	}
	if strings.Contains(out, "secrets") {
		t.Error("the chart grants something on secrets")
	}
	out, err = render(map[string]any{"rbac": map[string]any{"clusterRules": []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"nodes"}, "verbs": []any{"get", "patch"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(t, out); k["ClusterRole"] != 2 || k["ClusterRoleBinding"] != 2 || k["Role"] != 0 || !strings.Contains(out, "name: falco-phantom-responder-falco-phantom-nodes") {
		t.Errorf("all namespaces, with nodes:\n%s", out)
	}
	for values, want := range map[string]map[string]any{
		"tls.secret is required":     {"tls": map[string]any{"secret": ""}},
		"must not hold credentials":  {"phantom": map[string]any{"url": "https://u:p@soar", "existingSecret": "s"}},
		"existingSecret is required": {"phantom": map[string]any{"url": "https://soar"}},
	} {
		if _, err := render(want); err == nil || !strings.Contains(err.Error(), values) {
			t.Errorf("%v: %v, want %q", want, err, values)
		}
	}
}

// kinds counts the objects of a manifest by kind.
func kinds(t *testing.T, manifest string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, doc := range strings.Split(manifest, "\n---") {
		var obj struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if obj.Kind != "" {
			out[obj.Kind]++
		}
	}
	return out
}
