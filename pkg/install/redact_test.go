package install

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
)

func TestRedactSecretsOfUpstreamCharts(t *testing.T) {
	configMap := "---\n# Source: falco/templates/configmap.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: falco\ndata:\n  NATS_HOSTPORT: nats://nats:4222\n"
	manifest := configMap + "---\n# Source: falco/charts/falcosidekick/templates/secrets.yaml\n" +
		"apiVersion: v1\nkind: Secret\nmetadata:\n  name: falco-falcosidekick\ndata:\n  SLACK_WEBHOOKURL: aHR0cHM6Ly9ob29rcy5zbGFjay5jb20vc2VjcmV0\n" +
		"stringData:\n  SMTP_PASSWORD: hunter2\n"
	got, err := redactSecrets(manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"aHR0cHM6Ly9ob29rcy5zbGFjay5jb20vc2VjcmV0", "hunter2"} {
		if strings.Contains(got, secret) {
			t.Errorf("a Secret's value is still there:\n%s", got)
		}
	}
	if !strings.HasPrefix(got, configMap) {
		t.Errorf("the ConfigMap changed:\n%s", got)
	}
	if !strings.Contains(got, "---\n# Source: falco/charts/falcosidekick/templates/secrets.yaml\napiVersion: v1") {
		t.Errorf("the Secret lost its source comment:\n%s", got)
	}
	docs := strings.Split(got, "\n---\n")
	var s struct {
		Kind       string            `json:"kind"`
		Data       map[string]string `json:"data"`
		StringData map[string]string `json:"stringData"`
	}
	if err := yaml.Unmarshal([]byte(docs[len(docs)-1]), &s); err != nil {
		t.Fatalf("the redacted Secret does not parse: %v\n%s", err, got)
	}
	if s.Kind != "Secret" || s.Data["SLACK_WEBHOOKURL"] != "REDACTED" || s.StringData["SMTP_PASSWORD"] != "REDACTED" {
		t.Errorf("redacted Secret: %+v", s)
	}
}

// --dry-run prints none of the responder's secrets: not its token, not
// its key, not even its certificates (they change with every plan made
// offline).
func TestRenderNeverPrintsTheResponderSecrets(t *testing.T) {
	t.Parallel()
	o := Defaults()
	o.MockPhantom, o.Responder, o.NATSURL, o.SkipFalco = true, true, "nats://nats:4222", true
	p, err := NewPlan(context.Background(), o, Offline)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, ps := range p.Secrets {
		for _, v := range ps.Secret.StringData {
			values = append(values, v)
		}
	}
	if len(values) < 7 { // mock user, password, token; the forwarder's token; responder token, ca, cert, key
		t.Fatalf("only %d secret values planned", len(values))
	}
	out, err := (&Installer{Helm: helm.New(nil, nil)}).Render(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if v != "admin" && strings.Contains(out, v) {
			t.Errorf("--dry-run printed a secret value (%d bytes)", len(v))
		}
	}
	for _, marker := range []string{"PRIVATE KEY", "BEGIN CERTIFICATE"} {
		if strings.Contains(out, marker) {
			t.Errorf("--dry-run printed a %s", marker)
		}
	}
}
