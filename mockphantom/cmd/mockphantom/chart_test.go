package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/charts"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
)

// TestChartArgsRun renders the mockphantom chart and runs the command with
// the arguments and environment variables of its container, so that a flag
// renamed on one side fails here rather than in a cluster. Only --listen
// and --db are overridden (given again, the last one wins): the test
// cannot bind the chart's port or write to /data.
func TestChartArgsRun(t *testing.T) {
	t.Parallel()
	manifest, err := helm.New(nil, nil).Render(t.Context(), helm.Request{
		Name: "mockphantom", Namespace: "falco-phantom",
		Chart:  helm.Chart{Files: charts.MockPhantom()},
		Values: map[string]any{"existingSecret": "creds", "labels": []any{"events", "falco"}},
	})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var container *corev1.Container
	for _, doc := range strings.Split(manifest, "\n---") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil || d.Kind != "Deployment" {
			continue
		}
		for i, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "mockphantom" {
				container = &d.Spec.Template.Spec.Containers[i]
			}
		}
	}
	if container == nil {
		t.Fatalf("no Deployment with a mockphantom container in:\n%s", manifest)
	}
	values := map[string]string{envUser: "chart-user", envPassword: "chart-pw", envToken: "chart-tok"}
	env := map[string]string{}
	for _, e := range container.Env {
		v, known := values[e.Name]
		if !known {
			t.Errorf("the chart sets %s, which the command does not read", e.Name)
		}
		env[e.Name] = v
	}

	args := append(container.Args, "--listen=127.0.0.1:0", "--db="+filepath.Join(t.TempDir(), "soar.db"))
	running, _, _ := startRun(t, args, env)
	body := wantStatus(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/container_options", "", basic("chart-user", "chart-pw"), http.StatusOK)
	wantStatus(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/version", "", tokenHeader("chart-tok"), http.StatusOK)
	var options struct {
		Label []string `json:"label"`
	}
	if err := json.Unmarshal([]byte(body), &options); err != nil {
		t.Fatalf("container_options %s: %v", body, err)
	}
	if want := []string{"events", "falco"}; !reflect.DeepEqual(options.Label, want) {
		t.Errorf("labels = %v, want the chart's %v", options.Label, want)
	}
}
