package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/plugin"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := plugin.Run(context.Background(), args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, func(string) string { return "" })
	return out.String(), errOut.String(), err
}

func TestVersion(t *testing.T) {
	t.Parallel()
	out, _, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "kubectl-falco_phantom ") {
		t.Errorf("version = %q, %v", out, err)
	}
	out, _, err = run(t, "version", "-o", "json")
	var v map[string]string
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v["version"] == "" {
		t.Errorf("version -o json = %q, %v", out, err)
	}
	out, _, err = run(t, "version", "-o", "yaml")
	if err != nil || yaml.Unmarshal([]byte(out), &v) != nil || v["goVersion"] == "" {
		t.Errorf("version -o yaml = %q, %v", out, err)
	}
	if _, _, err := run(t, "version", "-o", "xml"); err == nil || !strings.Contains(err.Error(), "want table, json or yaml") {
		t.Errorf("version -o xml: %v", err)
	}
}

func TestDemoCommandJSON(t *testing.T) {
	t.Parallel()
	out, errOut, err := run(t, "demo", "-o", "json", "--timeout", "20s")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut)
	}
	var res struct {
		CaseID     int64  `json:"caseID"`
		ArtifactID int64  `json:"artifactID"`
		Subject    string `json:"subject"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("demo -o json printed %q: %v", out, err)
	}
	if res.CaseID == 0 || res.ArtifactID == 0 || res.Subject == "" {
		t.Errorf("demo result = %+v", res)
	}
}

func TestDemoCommandTimeline(t *testing.T) {
	t.Parallel()
	out, errOut, err := run(t, "demo")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut)
	}
	for _, want := range []string{"published to NATS", "stored in SOAR", "case 1, artifact 1", "total"} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "starting NATS") {
		t.Errorf("no progress on stderr:\n%s", errOut)
	}
}

func TestKubeFlagsAndCompletion(t *testing.T) {
	t.Parallel()
	out, _, err := run(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--kubeconfig", "--context", "--namespace"} {
		if !strings.Contains(out, flag) {
			t.Errorf("help lacks the kube flag %s", flag)
		}
	}
	out, _, err = run(t, "__complete", "de")
	if err != nil || !strings.Contains(out, "demo") {
		t.Errorf("completion of 'de' = %q, %v", out, err)
	}
}

// install refuses SOAR URLs with credentials in them, in every shape a user
// may write them, without showing the secret or a part of it.
func TestInstallNeverShowsURLSecrets(t *testing.T) {
	t.Parallel()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{
		"admin:S3CR3T@soar.example.com", "https:admin:S3CR3T@soar.example.com", "http:/admin:S3CR3T@soar.example.com",
		"https://admin:S3CR3T%zz@soar.example.com", "https://soar.example.com/?token=S3CR3T", "https://soar.example.com/#S3CR3T",
	} {
		out, errOut, err := run(t, "install", "--phantom-url", url, "--phantom-token-file", token, "--dry-run")
		if err == nil {
			t.Errorf("install --phantom-url %q succeeded", url)
			continue
		}
		if all := out + errOut + err.Error(); strings.Contains(all, "CR3T") {
			t.Errorf("install --phantom-url %q shows the secret: %s", url, all)
		}
	}
}
