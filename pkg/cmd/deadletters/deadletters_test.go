package deadletters_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/deadletters"
	dl "github.com/falco-phantom/kubectl-falco-phantom/pkg/deadletters"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// deadLettered runs a forwarder against a SOAR that refuses large
// requests, and publishes two events it cannot parse and one SOAR refuses,
// then waits until all three are dead letters.
func deadLettered(t *testing.T) (natsURL string) {
	t.Helper()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{MaxBodyBytes: 32 << 10})
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
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	huge := falco.ShellEvent(falco.ShellSpec{ContainerID: "0123456789ab", CommandLine: "sh -c " + strings.Repeat("x", 40<<10)})
	body, _ := huge.MarshalJSON()
	for subject, data := range map[string][]byte{
		"falco.notice.garbage":                     []byte("not an event"),
		"falco.notice.no_rule":                     []byte(`{"priority":"Notice","time":"2026-12-01T10:00:00Z"}`),
		"falco.notice.terminal_shell_in_container": body,
	} {
		if err := nc.Publish(subject, data); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 20*time.Second, func() error {
		out, _ := run(t, n.URL(), "list", "-o", "json")
		var letters []dl.Letter
		if err := json.Unmarshal([]byte(out), &letters); err != nil || len(letters) != 3 {
			return fmt.Errorf("dead letters so far: %s", out)
		}
		return nil
	})
	return n.URL()
}

func run(t *testing.T, natsURL string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}
	cmd := deadletters.NewCommand(streams, &deadletters.NATSConnector{URL: natsURL}, "dead-letters")
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

func TestListShowDropReplay(t *testing.T) {
	t.Parallel()
	url := deadLettered(t)

	out, err := run(t, url, "list")
	if err != nil || strings.Count(out, "invalid_event") != 2 || strings.Count(out, "phantom_rejected") != 1 {
		t.Fatalf("list = %v\n%s", err, out)
	}
	out, err = run(t, url, "list", "--reason", "phantom_rejected", "-o", "json")
	var letters []dl.Letter
	if err != nil || json.Unmarshal([]byte(out), &letters) != nil || len(letters) != 1 || letters[0].Subject != "falco.notice.terminal_shell_in_container" {
		t.Fatalf("list --reason phantom_rejected = %v\n%s", err, out)
	}
	rejected := letters[0]
	if out, err := run(t, url, "list", "--since", "1h"); err != nil || strings.Count(out, "\n") != 4 {
		t.Errorf("list --since 1h = %v\n%s", err, out)
	}
	if out, err := run(t, url, "list", "--until", "1h"); err != nil || !strings.Contains(out, "no dead letters") {
		t.Errorf("list --until 1h (an hour ago) = %v\n%s", err, out)
	}

	out, err = run(t, url, "show", fmt.Sprint(rejected.Sequence))
	if err != nil || !strings.Contains(out, "reason:    phantom_rejected") || !strings.Contains(out, `"rule": "Terminal shell in container"`) {
		t.Errorf("show = %v\n%s", err, out)
	}
	if _, err := run(t, url, "show", "999"); err == nil || !strings.Contains(err.Error(), "no dead letter 999") {
		t.Errorf("show 999 = %v", err)
	}

	// Replay leaves what replaying cannot help.
	out, err = run(t, url, "replay")
	if err != nil || !strings.Contains(out, "replayed 1, skipped 0, left 2") {
		t.Errorf("replay = %v\n%s", err, out)
	}
	// Still too large for this SOAR: a new dead letter after a while;
	// dropping asks what to drop.
	if _, err := run(t, url, "drop"); err == nil || !strings.Contains(err.Error(), "say what to drop") {
		t.Errorf("drop with nothing named = %v", err)
	}
	out, err = run(t, url, "drop", "--reason", "invalid_event")
	if err != nil || !strings.Contains(out, "dropped 2") {
		t.Errorf("drop --reason invalid_event = %v\n%s", err, out)
	}
	testkit.WaitFor(t, 20*time.Second, func() error {
		out, err := run(t, url, "list", "-o", "json")
		var letters []dl.Letter
		if err != nil || json.Unmarshal([]byte(out), &letters) != nil || len(letters) != 1 || letters[0].Reason != "phantom_rejected" {
			return fmt.Errorf("after the replay and the drop: %v %s", err, out)
		}
		return nil
	})
	out, err = run(t, url, "drop", "--all")
	if err != nil || !strings.Contains(out, "dropped 1") {
		t.Errorf("drop --all = %v\n%s", err, out)
	}
	if out, err := run(t, url, "replay", "-o", "json"); err != nil || !strings.Contains(out, `"replayed": 0`) {
		t.Errorf("replay with nothing left = %v\n%s", err, out)
	}
}

func TestBadArguments(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"list", "--reason", "bogus"}, {"list", "--since", "yesterday"}, {"show", "x"}, {"drop", "3", "--all"}, {"list", "-o", "xml"}} {
		if _, err := run(t, "nats://127.0.0.1:1", args...); err == nil || strings.Contains(err.Error(), "connect") {
			t.Errorf("%v = %v, want it refused before connecting", args, err)
		}
	}
}
