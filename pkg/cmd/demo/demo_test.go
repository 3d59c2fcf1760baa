package demo_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	cmddemo "github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/demo"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// pipeline runs NATS, the mock SOAR and a forwarder, and returns the NATS
// URL and a client of SOAR.
func pipeline(t *testing.T) (string, *phantom.Client) {
	t.Helper()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	cfg := forwarder.Defaults()
	cfg.Phantom.BaseURL, cfg.Phantom.Auth = soar.URL, phantom.Auth{Token: testkit.Token}
	cfg.NATS.URL, cfg.Listen = n.URL(), ""
	fw, err := forwarder.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testkit.WaitFor(t, 10*time.Second, func() error {
		if !fw.Consuming() {
			return fmt.Errorf("forwarder not consuming yet")
		}
		return nil
	})
	c, err := phantom.New(phantom.Config{BaseURL: soar.URL, Credentials: phantom.StaticCredentials{Token: testkit.Token}})
	if err != nil {
		t.Fatal(err)
	}
	return n.URL(), c
}

func publish(t *testing.T, natsURL string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	err := cmddemo.Run(context.Background(), append([]string{"publish", "--nats-url", natsURL}, args...), streams, func(string) string { return "" })
	if err != nil {
		t.Fatalf("publish %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// waitArtifacts waits until SOAR holds n artifacts and returns them.
func waitArtifacts(t *testing.T, c *phantom.Client, n int) []phantom.Artifact {
	t.Helper()
	var arts []phantom.Artifact
	testkit.WaitFor(t, 20*time.Second, func() error {
		page, err := c.Artifacts(context.Background(), phantom.Query{PageSize: 0})
		if err != nil {
			return err
		}
		if arts = page.Data; len(arts) < n {
			return fmt.Errorf("SOAR holds %d artifacts, want %d", len(arts), n)
		}
		return nil
	})
	return arts
}

// The attack scenario makes several cases, of several rules, pods and
// severities, as an analyst would see an intrusion.
func TestPublishAttackScenario(t *testing.T) {
	t.Parallel()
	natsURL, c := pipeline(t)
	out := publish(t, natsURL, "--scenario", "attack")
	if n := strings.Count(out, "published "); n != 8 {
		t.Fatalf("published %d alerts, want the scenario's 8:\n%s", n, out)
	}
	waitArtifacts(t, c, 8)
	cases, err := c.Containers(context.Background(), phantom.Query{PageSize: 0})
	if err != nil {
		t.Fatal(err)
	}
	rules, severities := map[string]bool{}, map[string]bool{}
	for _, ct := range cases.Data {
		rules[ct.Name], severities[ct.Severity] = true, true
	}
	if len(cases.Data) != 6 || len(rules) != 5 || len(severities) != 3 {
		t.Errorf("%d cases, %d rules, severities %v; want 6 cases (one per rule and container), 5 rules, low, medium and high",
			len(cases.Data), len(rules), severities)
	}
}

// --command is the command line as given; --rule, --priority, --pod and
// --namespace say where and what; --file publishes an event as written.
func TestPublishWhatIsAsked(t *testing.T) {
	t.Parallel()
	natsURL, c := pipeline(t)
	publish(t, natsURL, "--rule", "Read sensitive file untrusted", "--command", "cat /etc/shadow", "--pod", "db-0", "--namespace", "data", "--priority", "critical")
	event := `{"rule":"Write below etc","priority":"Error","time":"` + time.Now().UTC().Format(time.RFC3339Nano) +
		`","output":"File below /etc opened for writing","output_fields":{"container.id":"abcdefabcdef","proc.cmdline":"touch /etc/evil","fd.name":"/etc/evil"}}`
	file := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(file, []byte(event+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	publish(t, natsURL, "--file", file)
	byRule := map[string]phantom.Artifact{}
	for _, a := range waitArtifacts(t, c, 2) {
		byRule[a.Name] = a
	}
	read := byRule["Read sensitive file untrusted"]
	if read.CEF["commandLine"] != "cat /etc/shadow" || read.CEF["kubernetesPodName"] != "db-0" ||
		read.CEF["kubernetesNamespace"] != "data" || read.CEF["fileName"] != "/etc/shadow" || read.Severity != "high" {
		t.Errorf("the sensitive file alert: severity %s, CEF %v", read.Severity, read.CEF)
	}
	if w := byRule["Write below etc"]; w.CEF["commandLine"] != "touch /etc/evil" || w.CEF["fileName"] != "/etc/evil" {
		t.Errorf("the event from the file: %v", w.CEF)
	}
}

func TestPublishRefusesWhatItCannotPublish(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"priority":"Notice"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--scenario", "heist"}, {"--priority", "urgent"}, {"--file", bad}, {"--count", "0"}} {
		var out bytes.Buffer
		streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}
		err := cmddemo.Run(context.Background(), append([]string{"publish", "--nats-url", "nats://127.0.0.1:1"}, args...), streams, func(string) string { return "" })
		if err == nil || strings.Contains(err.Error(), "connect") {
			t.Errorf("publish %v = %v, want it refused before connecting", args, err)
		}
	}
}
