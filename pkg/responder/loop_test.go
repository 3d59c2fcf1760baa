package responder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/pki"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/responder"
)

// The loop without Falco: a shell case arrives in the real mock SOAR,
// whose playbook is the one install --mock-phantom --responder writes; it
// calls the responder, which isolates the pod and notes it into the case.
func TestMockPlaybookIsolatesThroughTheResponder(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	ctx := context.Background()
	ns := newNamespace(t)
	newPod(t, ns, "web", "5e11c0de0000")

	// The responder's address, certificate and token, as the mock's
	// playbook finds them.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b, err := pki.NewServer("loop CA", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"tls.crt": b.Cert, "tls.key": b.Key, "ca.crt": b.CACert, "token": []byte(token + "\n")} {
		write(t, filepath.Join(dir, name), string(content))
	}
	playbooks := installedPlaybooks(t, "https://"+ln.Addr().String(), dir)
	soar := testkit.StartPhantom(t, mockphantom.Config{PlaybooksFile: playbooks})
	if got := soar.Playbooks(); len(got) != 1 || got[0] != install.MockIsolatePlaybook {
		t.Fatalf("the mock runs playbooks %v", got)
	}
	soarToken := filepath.Join(dir, "soar-token")
	write(t, soarToken, testkit.Token)
	r := startOn(t, ln, apiServer.Kube, []string{ns}, func(c *responder.Config) {
		c.CertFile, c.KeyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		c.SOAR.BaseURL, c.SOAR.TokenFile = soar.URL, soarToken
	})

	// The case as the forwarder writes it: the rule, and the alert with the
	// container id (Falco 0.40 sends no pod).
	client, err := phantom.New(phantom.Config{BaseURL: soar.URL, Credentials: phantom.StaticCredentials{Token: testkit.Token}})
	if err != nil {
		t.Fatal(err)
	}
	created, err := client.CreateContainer(ctx, &phantom.Container{Name: "Terminal shell in container", Label: "events", Severity: "low",
		SourceDataIdentifier: "loop-test", Artifacts: []phantom.Artifact{{Name: "Terminal shell in container", Label: "events", RunAutomation: true,
			CEF: map[string]any{"containerId": "5e11c0de0000", "falcoRule": "Terminal shell in container", "processName": "sh"}}}})
	if err != nil {
		t.Fatal(err)
	}
	caseID := created.ID
	testkit.WaitFor(t, 20*time.Second, func() error {
		if v := getPod(t, ns, "web").Labels[respond.IsolationLabel]; v != fmt.Sprint(caseID) {
			return fmt.Errorf("pod label %q, want %d; responder log:\n%s", v, caseID, r.logs.String())
		}
		return nil
	})
	if _, err := apiServer.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{}); err != nil {
		t.Errorf("isolation policy: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		runs := actionRuns(t, soar.URL, caseID)
		if len(runs) != 1 || runs[0].Status != "success" || runs[0].Playbook != install.MockIsolatePlaybook {
			return fmt.Errorf("action runs %+v", runs)
		}
		if n := notesOf(t, soar.URL, caseID); len(n) != 1 || !strings.HasPrefix(n[0].Title, "falco-phantom isolate "+ns+"/web: done") {
			return fmt.Errorf("notes %+v", n)
		}
		return nil
	})
	if !strings.Contains(r.logs.String(), `"requested_by":"mockphantom playbook `+install.MockIsolatePlaybook+`"`) {
		t.Errorf("the audit does not say the playbook asked:\n%s", r.logs.String())
	}
}

// installedPlaybooks writes the playbooks install gives the mock, pointed
// at url and at the files of dir instead of the cluster's.
func installedPlaybooks(t *testing.T, url, dir string) string {
	t.Helper()
	o := install.Defaults()
	o.MockPhantom, o.Responder, o.NATSURL, o.SkipFalco = true, true, "nats://nats:4222", true
	p, err := install.NewPlan(context.Background(), o, install.Offline)
	if err != nil {
		t.Fatal(err)
	}
	rules := p.Release(install.MockPhantom).Request.Values["playbooks"].(map[string]any)["rules"]
	b, err := yaml.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), install.ResponderURL(o.Namespace), url)
	s = strings.ReplaceAll(s, "/etc/mockphantom/responder/", dir+"/")
	if strings.Contains(s, "/etc/mockphantom") || !strings.Contains(s, url) {
		t.Fatalf("playbooks not pointed at the test's responder:\n%s", s)
	}
	file := filepath.Join(dir, "playbooks.yaml")
	if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

type actionRun struct {
	Playbook string `json:"playbook"`
	Status   string `json:"status"`
	Message  string `json:"message"`
}

func actionRuns(t *testing.T, base string, caseID int64) []actionRun {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/rest/action_run?page_size=0&_filter_container=%d", base, caseID), nil)
	req.Header.Set("ph-auth-token", testkit.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var page struct {
		Data []actionRun `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		t.Fatalf("GET /rest/action_run: %d, %v", res.StatusCode, err)
	}
	return page.Data
}
