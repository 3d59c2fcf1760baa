package forwarder

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

func TestSeverity(t *testing.T) {
	t.Parallel()
	want := map[falco.Priority]string{
		falco.PriorityEmergency: "high", falco.PriorityAlert: "high", falco.PriorityCritical: "high",
		falco.PriorityError: "medium", falco.PriorityWarning: "medium",
		falco.PriorityNotice: "low", falco.PriorityInformational: "low", falco.PriorityDebug: "low",
	}
	for _, p := range falco.Priorities() {
		if got := Severity(p); got != want[p] {
			t.Errorf("Severity(%v) = %q, want %q", p, got, want[p])
		}
	}
}

func TestArtifactFromSidekickEvent(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../falco/testdata/sidekick-terminal-shell.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := falco.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	a := Artifact(ev, raw)
	wantCEF := map[string]string{
		"kubernetesPodName": "web-7c9f8d5b6-x2kqz", "kubernetesNamespace": "shop", "containerId": "5d1f0ab2c3e4",
		"containerName": "nginx", "containerImage": "docker.io/library/nginx:1.27", "processName": "bash",
		"parentProcessName": "runc", "commandLine": "bash", "userName": "root", "falcoRule": "Terminal shell in container",
		"falcoPriority": "Notice", "sourceHostName": "worker-2", "terminal": "34816",
	}
	for k, want := range wantCEF {
		if got, _ := a.CEF[k].(string); got != want {
			t.Errorf("cef[%s] = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"kubernetesPodName", "containerId", "userName", "processName", "sourceHostName"} {
		if len(a.CEFTypes[k]) == 0 {
			t.Errorf("cef_types[%s] is empty", k)
		}
	}
	if a.Severity != "low" || a.Name != "Terminal shell in container" || a.StartTime != "2026-11-27T09:12:05.118230Z" {
		t.Errorf("severity %q, name %q, start %q", a.Severity, a.Name, a.StartTime)
	}
	if a.SourceDataIdentifier != "falco-event-"+ev.ID() {
		t.Errorf("source_data_identifier = %q", a.SourceDataIdentifier)
	}
	if string(a.Data) != string(raw) {
		t.Errorf("data does not keep the raw event")
	}
	if len(a.Tags) != 5 {
		t.Errorf("tags = %v", a.Tags)
	}
	c := Container(ev, raw, "events", "falco-case-x")
	if c.Name != ev.Rule || c.Description != ev.Output || c.Label != "events" || c.Status != "new" || c.Severity != "low" ||
		c.StartTime != a.StartTime || c.SourceDataIdentifier != "falco-case-x" || len(c.Tags) != 5 {
		t.Errorf("container = %+v", c)
	}
}

func TestArtifactBoundsHostileValues(t *testing.T) {
	t.Parallel()
	long := "<script>alert(1)</script>\x1b[31m" + strings.Repeat("A", 100_000)
	ev := shellEvent("abc", time.Now())
	ev.OutputFields["proc.cmdline"] = long
	ev.Output = long
	ev.Tags = make([]string, 100)
	for i := range ev.Tags {
		ev.Tags[i] = "t"
	}
	raw, _ := json.Marshal(ev)
	a := Artifact(ev, raw)
	cmd := a.CEF["commandLine"].(string)
	if !strings.HasPrefix(cmd, "<script>alert(1)</script>\x1b[31m") {
		t.Errorf("command line prefix changed: %q", cmd[:40])
	}
	if len(cmd) > maxCEFValueLen+64 || !strings.Contains(cmd, "bytes cut]") {
		t.Errorf("command line is %d bytes, want at most about %d with a cut marker", len(cmd), maxCEFValueLen)
	}
	if len(a.Tags) != maxTags {
		t.Errorf("%d tags kept, want %d", len(a.Tags), maxTags)
	}
	c := Container(ev, raw, "events", "x")
	if len(c.Description) > maxDescriptionLen+64 {
		t.Errorf("description is %d bytes", len(c.Description))
	}
	if len(bound("héllo", 2)) == 0 || !strings.HasPrefix(bound("héllo", 2), "h") || strings.Contains(bound("héllo", 2), "\xc3") {
		t.Errorf("bound cut inside a rune: %q", bound("héllo", 2))
	}
}
