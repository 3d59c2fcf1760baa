package testshell_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/testshell"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/shelltest"
)

func TestTimeline(t *testing.T) {
	t.Parallel()
	opened := time.Date(2026, 11, 27, 10, 2, 3, 120e6, time.UTC)
	event, stored, found := opened.Add(61*time.Millisecond), opened.Add(282*time.Millisecond), opened.Add(930*time.Millisecond)
	passed := &shelltest.Result{
		Outcome: shelltest.Passed, Marker: "falco-phantom-test-abc", Namespace: "falco-phantom", Pod: "falco-phantom-shell-x7k2p",
		Container: "shell", ShellOpened: opened, FalcoEvent: &event, Stored: &stored, Found: &found, CaseID: 12, ArtifactID: 57,
		CaseName: "Terminal shell in container", Latency: found.Sub(opened), SOARURL: "https://soar.example.com",
	}
	var b bytes.Buffer
	if err := testshell.Timeline(&b, passed); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"SOAR: passed", "10:02:03.120  shell opened", "falco-phantom/falco-phantom-shell-x7k2p (container shell), marker falco-phantom-test-abc",
		"10:02:03.181  Falco event", "10:02:03.402  stored in SOAR", `case 12 "Terminal shell in container", artifact 57`,
		"total", "930ms",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("timeline lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "Where to look") {
		t.Error("a passed test shows a diagnosis")
	}

	failed := &shelltest.Result{Outcome: shelltest.NoEvent, Marker: "m", ShellOpened: opened, Error: "no alert with marker m reached SOAR within 1m0s",
		Diagnosis: []string{"Falco: 0/1 pods ready", "forwarder: received no alert since the shell opened"}}
	b.Reset()
	_ = testshell.Timeline(&b, failed)
	for _, want := range []string{"FAILED (no-event-in-soar)", "error: no alert with marker m", "Where to look:", "  - Falco: 0/1 pods ready"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("failure timeline lacks %q:\n%s", want, b.String())
		}
	}
	if got := (&testshell.Failed{Result: failed}).ExitCode(); got != 2 {
		t.Errorf("exit code of no event = %d, want 2", got)
	}
	for outcome, code := range map[shelltest.Outcome]int{shelltest.Passed: 0, shelltest.NoEvent: 2, shelltest.ExecFailed: 3, shelltest.SOARUnreachable: 4} {
		if outcome.ExitCode() != code {
			t.Errorf("%s exit code %d, want %d", outcome, outcome.ExitCode(), code)
		}
	}
}
