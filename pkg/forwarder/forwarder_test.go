package forwarder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/deadletters"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// running is a forwarder started by a test.
type running struct {
	fw   *forwarder.Forwarder
	logs *testkit.Buffer
	stop func() error
}

func baseConfig(natsURL, soarURL string) forwarder.Config {
	cfg := forwarder.Defaults()
	cfg.Phantom.BaseURL = soarURL
	cfg.Phantom.Auth = phantom.Auth{User: testkit.User, Password: testkit.Password}
	cfg.Phantom.Timeout = 2 * time.Second
	cfg.NATS.URL = natsURL
	cfg.Listen = ""
	cfg.GroupWindow = time.Minute
	return cfg
}

func startForwarder(t *testing.T, cfg forwarder.Config) *running {
	t.Helper()
	r := launchForwarder(t, cfg)
	// Consuming, not Ready: SOAR may be meant to refuse (see the tests of
	// set-up problems).
	testkit.WaitFor(t, 10*time.Second, func() error {
		if !r.fw.Consuming() {
			return fmt.Errorf("forwarder not consuming yet")
		}
		return nil
	})
	return r
}

// launchForwarder starts a forwarder without waiting for it to be ready.
func launchForwarder(t *testing.T, cfg forwarder.Config) *running {
	t.Helper()
	logs := &testkit.Buffer{}
	fw, err := forwarder.New(cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = fmt.Errorf("forwarder did not stop within 30s")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		_ = stop()
		if t.Failed() {
			t.Logf("forwarder logs:\n%s", tailLines(logs.String(), 60))
		}
	})
	return &running{fw: fw, logs: logs, stop: stop}
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// publish sends ev exactly as falcosidekick does: a plain NATS publish of
// its JSON on falco.<priority>.<rule slug>.
func publish(t *testing.T, nc *nats.Conn, ev *falco.Event) {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(ev.Subject(), b); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func shell(container, marker string, at time.Time) *falco.Event {
	return falco.ShellEvent(falco.ShellSpec{
		Time: at, Hostname: "node-1", ContainerID: container, ContainerName: "web", Namespace: "shop", Pod: "web-" + container,
		CommandLine: "sh -c echo " + marker, Image: "nginx", ImageTag: "1.27",
	})
}

func soarClient(t *testing.T, url string) *phantom.Client {
	t.Helper()
	c, err := phantom.New(phantom.Config{BaseURL: url, Credentials: phantom.StaticCredentials{User: testkit.User, Password: testkit.Password}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stored reads every artifact from SOAR, keyed by the marker in its
// command line, and fails the test if one is there twice.
func stored(t *testing.T, c *phantom.Client) (map[string]phantom.Artifact, error) {
	t.Helper()
	page, err := c.Artifacts(context.Background(), phantom.Query{PageSize: 0})
	if err != nil {
		return nil, err
	}
	out := map[string]phantom.Artifact{}
	for _, a := range page.Data {
		cmd, _ := a.CEF["commandLine"].(string)
		marker := cmd[strings.LastIndex(cmd, " ")+1:]
		if prev, dup := out[marker]; dup {
			t.Fatalf("event %s stored twice: artifacts %d and %d", marker, prev.ID, a.ID)
		}
		out[marker] = a
	}
	return out, nil
}

// waitStored waits until SOAR holds exactly the markers, each once.
func waitStored(t *testing.T, c *phantom.Client, markers []string, timeout time.Duration) map[string]phantom.Artifact {
	t.Helper()
	var got map[string]phantom.Artifact
	testkit.WaitFor(t, timeout, func() error {
		var err error
		if got, err = stored(t, c); err != nil {
			return err
		}
		if len(got) != len(markers) {
			return fmt.Errorf("SOAR holds %d events, want %d", len(got), len(markers))
		}
		for _, m := range markers {
			if _, ok := got[m]; !ok {
				return fmt.Errorf("event %s missing", m)
			}
		}
		return nil
	})
	return got
}

func TestShellAlertsBecomeOneCase(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.NATS.Subject = "falco.*.*" // what the original deployment used
	fw := startForwarder(t, cfg)
	nc := connect(t, n.URL())

	// One kubectl exec -it raises several alerts; another container one more.
	now := time.Now().UTC()
	publish(t, nc, shell("aaaaaaaaaaaa", "m1", now))
	publish(t, nc, shell("aaaaaaaaaaaa", "m2", now.Add(10*time.Millisecond)))
	publish(t, nc, shell("aaaaaaaaaaaa", "m3", now.Add(400*time.Millisecond)))
	publish(t, nc, shell("bbbbbbbbbbbb", "m4", now))
	c := soarClient(t, soar.URL)
	arts := waitStored(t, c, []string{"m1", "m2", "m3", "m4"}, 10*time.Second)

	if arts["m1"].Container != arts["m2"].Container || arts["m1"].Container != arts["m3"].Container {
		t.Errorf("alerts of one shell in cases %d, %d, %d; want one case", arts["m1"].Container, arts["m2"].Container, arts["m3"].Container)
	}
	if arts["m4"].Container == arts["m1"].Container {
		t.Errorf("another container's alert joined the case")
	}
	ct, err := c.Container(context.Background(), arts["m1"].Container)
	if err != nil {
		t.Fatal(err)
	}
	if ct.Name != falco.ShellRule || ct.Label != "events" || ct.Severity != "low" || ct.Status != "new" ||
		!strings.Contains(ct.Description, "A shell was spawned") || len(ct.Tags) != 5 {
		t.Errorf("case = %+v", ct)
	}
	var data map[string]any
	if err := json.Unmarshal(ct.Data, &data); err != nil || data["rule"] != falco.ShellRule || data["uuid"] == nil {
		t.Errorf("case data does not keep the raw event: %s", ct.Data)
	}
	a := arts["m2"]
	if a.CEF["kubernetesPodName"] != "web-aaaaaaaaaaaa" || a.CEF["kubernetesNamespace"] != "shop" ||
		a.CEF["containerId"] != "aaaaaaaaaaaa" || a.CEF["commandLine"] != "sh -c echo m2" || a.CEF["userName"] != "root" ||
		a.CEF["containerImage"] != "nginx:1.27" || a.CEF["falcoRule"] != falco.ShellRule {
		t.Errorf("artifact cef = %v", a.CEF)
	}
	if got := metric(t, fw.fw, forwarder.MetricDelivered, `outcome="new"`); got != 4 {
		t.Errorf("%s{new} = %v, want 4", forwarder.MetricDelivered, got)
	}
	if got := metric(t, fw.fw, forwarder.MetricCases, ""); got != 2 {
		t.Errorf("%s = %v, want 2", forwarder.MetricCases, got)
	}
	assertNoSecrets(t, fw.logs.String())
}

func TestResentAndRedeliveredEventsAreStoredOnce(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	// A message JetStream handed to the first forwarder's last pull request
	// just as it stopped comes back after AckWait: keep that short.
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.NATS.AckWait = 5 * time.Second
	fw := startForwarder(t, cfg)
	nc := connect(t, n.URL())
	ev := shell("cccccccccccc", "r1", time.Now().UTC())
	publish(t, nc, ev)
	c := soarClient(t, soar.URL)
	waitStored(t, c, []string{"r1"}, 10*time.Second)

	// falcosidekick resends with a new uuid; a second forwarder life sees
	// it again: still one artifact in one case.
	ev.UUID = "11111111-2222-4333-8444-555555555555"
	publish(t, nc, ev)
	if err := fw.stop(); err != nil {
		t.Fatal(err)
	}
	publish(t, nc, ev)
	fw2 := startForwarder(t, cfg)
	testkit.WaitFor(t, 20*time.Second, func() error {
		if got := metric(t, fw2.fw, forwarder.MetricDelivered, `outcome="existing"`); got < 1 {
			return fmt.Errorf("redelivery not seen yet")
		}
		return nil
	})
	waitStored(t, c, []string{"r1"}, 5*time.Second)
	page, err := c.Containers(context.Background(), phantom.Query{})
	if err != nil || page.Count != 1 {
		t.Errorf("cases = %+v, %v; want 1", page, err)
	}
}

func TestSOARDownThenBack(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	fw := startForwarder(t, baseConfig(n.URL(), soar.URL))
	nc := connect(t, n.URL())
	c := soarClient(t, soar.URL)

	soar.SetFaults(mockphantom.Faults{DownUntil: time.Now().Add(time.Hour)})
	var markers []string
	for i := range 20 {
		m := fmt.Sprintf("d%02d", i)
		markers = append(markers, m)
		publish(t, nc, shell(fmt.Sprintf("dddddddddd%02d", i%3), m, time.Now().UTC()))
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		if metric(t, fw.fw, forwarder.MetricRetried, "") < 1 {
			return fmt.Errorf("no retry yet")
		}
		return nil
	})
	soar.Stop() // down hard, not only answering 503
	soar.Restart()
	waitStored(t, c, markers, 30*time.Second)
}

func TestInvalidEventsAreDeadLettered(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	fw := startForwarder(t, baseConfig(n.URL(), soar.URL))
	nc := connect(t, n.URL())

	publish(t, nc, shell("eeeeeeeeeeee", "before", time.Now().UTC()))
	bad := map[string]string{
		"falco.notice.garbage":   "this is not json",
		"falco.notice.truncated": `{"rule":"Terminal shell in container","priority":"Notice","ti`,
		"falco.error.no_rule":    `{"priority":"Error","time":"2026-11-27T01:00:00Z"}`,
		"falco.notice.too_big":   `{"rule":"x","priority":"Notice","time":"2026-11-27T01:00:00Z","output":"` + strings.Repeat("A", falco.MaxEventBytes) + `"}`,
	}
	for subject, body := range bad {
		if err := nc.Publish(subject, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, nc, shell("eeeeeeeeeeee", "after", time.Now().UTC()))
	waitStored(t, soarClient(t, soar.URL), []string{"before", "after"}, 10*time.Second)

	testkit.WaitFor(t, 10*time.Second, func() error {
		inv := metric(t, fw.fw, forwarder.MetricDeadLettered, `reason="invalid_event"`)
		big := metric(t, fw.fw, forwarder.MetricDeadLettered, `reason="too_large"`)
		if inv != 3 || big != 1 {
			return fmt.Errorf("dead letters: invalid %v too_large %v; want 3 and 1", inv, big)
		}
		return nil
	})
	// Every dead letter is kept with its reason and original subject.
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	stream, err := js.Stream(ctx, forwarder.Defaults().NATS.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := stream.Info(ctx)
	if info.State.Msgs != 4 {
		t.Fatalf("dead-letter stream holds %d messages, want 4", info.State.Msgs)
	}
	seen := map[string]string{}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Header.Get(forwarder.HeaderSubject)] = m.Header.Get(forwarder.HeaderReason) + ": " + m.Header.Get(forwarder.HeaderError)
	}
	for subject, want := range map[string]string{
		"falco.notice.garbage": "invalid_event: invalid Falco event: not a JSON object", "falco.notice.truncated": "invalid_event: invalid Falco event: malformed JSON",
		"falco.error.no_rule": `invalid_event: invalid Falco event: field "rule": is missing`, "falco.notice.too_big": "too_large",
	} {
		if !strings.HasPrefix(seen[subject], want) {
			t.Errorf("dead letter of %s: %q, want it to start with %q", subject, seen[subject], want)
		}
	}
}

func TestSOARRefusingEverythingHoldsEventsUntilFixed(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	dbPath := filepath.Join(t.TempDir(), "soar.db")
	// The label the forwarder uses does not exist in SOAR yet.
	soar := testkit.StartPhantom(t, mockphantom.Config{DBPath: dbPath, Labels: []string{"other"}})
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("wrong-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.Phantom.Auth = phantom.Auth{User: testkit.User}
	cfg.Phantom.PasswordFile = pwFile
	fw := startForwarder(t, cfg)
	nc := connect(t, n.URL())
	publish(t, nc, shell("ffffffffffff", "held", time.Now().UTC()))

	// 1. Bad credentials: not ready, and the log says what to fix.
	testkit.WaitFor(t, 10*time.Second, func() error {
		err := fw.fw.Ready()
		if err == nil || !strings.Contains(err.Error(), "PHANTOM_PASSWORD") {
			return fmt.Errorf("Ready() = %v, want the credentials named", err)
		}
		return nil
	})
	if !strings.Contains(fw.logs.String(), "refuses every request until this is fixed") {
		t.Errorf("log does not say SOAR refuses everything:\n%s", fw.logs.String())
	}
	// 2. The mounted Secret is fixed: now the label is the problem.
	if err := os.WriteFile(pwFile, []byte(testkit.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, func() error {
		err := fw.fw.Ready()
		if err == nil || !strings.Contains(err.Error(), "is not a known label") || !strings.Contains(err.Error(), "PHANTOM_LABEL") {
			return fmt.Errorf("Ready() = %v, want the unknown label and its fix", err)
		}
		return nil
	})
	// 3. An administrator creates the label: the held event arrives, once.
	soar.Stop()
	soarAt := restartAt(t, soar.URL, mockphantom.Config{DBPath: dbPath, Labels: []string{"other", "events"}})
	waitStored(t, soarClient(t, soarAt), []string{"held"}, 90*time.Second)
	testkit.WaitFor(t, 10*time.Second, fw.fw.Ready)
	if got := metric(t, fw.fw, forwarder.MetricDeadLettered, `reason="phantom_rejected"`); got != 0 {
		t.Errorf("%v events dead-lettered; a set-up problem must hold them, not drop them", got)
	}
	assertNoSecrets(t, fw.logs.String())
	if strings.Contains(fw.logs.String(), "wrong-password") {
		t.Error("log shows the (wrong) password")
	}
}

// restartAt serves a new mock SOAR on the address of an old one.
func restartAt(t *testing.T, oldURL string, cfg mockphantom.Config) string {
	t.Helper()
	cfg.User, cfg.Password, cfg.Token = testkit.User, testkit.Password, testkit.Token
	srv, err := mockphantom.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	var run *mockphantom.Running
	testkit.WaitFor(t, 5*time.Second, func() error {
		run, err = mockphantom.Serve(context.Background(), srv, strings.TrimPrefix(oldURL, "http://"), nil)
		return err
	})
	t.Cleanup(func() { _ = run.Close() })
	return run.URL
}

func TestCoreMode(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.NATS.Mode = forwarder.ModeCore
	startForwarder(t, cfg)
	nc := connect(t, n.URL())
	publish(t, nc, shell("111111111111", "c1", time.Now().UTC()))
	publish(t, nc, shell("111111111111", "c2", time.Now().UTC()))
	arts := waitStored(t, soarClient(t, soar.URL), []string{"c1", "c2"}, 10*time.Second)
	if arts["c1"].Container != arts["c2"].Container {
		t.Error("core mode: one shell's alerts in two cases")
	}
}

func TestHealthAndMetricsEndpoints(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	fw := startForwarder(t, baseConfig(n.URL(), soar.URL))
	srv := httptestServer(t, fw.fw.Handler())
	publish(t, connect(t, n.URL()), shell("222222222222", "h1", time.Now().UTC()))
	waitStored(t, soarClient(t, soar.URL), []string{"h1"}, 10*time.Second)
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ok", "/metrics": forwarder.MetricDelivered + `{outcome="new"} 1`} {
		resp, err := http.Get(srv + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d, want 200 with %q", path, resp.StatusCode, want)
		}
		if strings.Contains(string(body), testkit.Password) {
			t.Errorf("GET %s shows the password", path)
		}
	}
}

func assertNoSecrets(t *testing.T, logs string) {
	t.Helper()
	for _, s := range []string{testkit.Password, testkit.Token} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain a secret:\n%s", logs)
		}
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// metric reads a counter, gauge or histogram count from the forwarder's
// registry; labels is "" or one label pair such as `outcome="new"`.
func metric(t *testing.T, fw *forwarder.Forwarder, name, labels string) float64 {
	t.Helper()
	families, err := fw.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if labels != "" && !slices.Contains(pairs, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			case m.Histogram != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}

func TestRejectedEventIsDeadLetteredThenReplayed(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	dbPath := filepath.Join(t.TempDir(), "soar.db")
	// This SOAR refuses requests over 64 KiB: an alert with a huge command
	// line is refused for good, the others must still arrive.
	soar := testkit.StartPhantom(t, mockphantom.Config{DBPath: dbPath, MaxBodyBytes: 64 << 10})
	fw := startForwarder(t, baseConfig(n.URL(), soar.URL))
	nc := connect(t, n.URL())
	now := time.Now().UTC()
	huge := shell("999999999999", "huge", now)
	huge.OutputFields["proc.cmdline"] = strings.Repeat("x", 6000) + " huge"
	huge.Output = strings.Repeat("y", 70_000)
	publish(t, nc, shell("999999999999", "small1", now))
	publish(t, nc, huge)
	publish(t, nc, shell("999999999999", "small2", now.Add(time.Millisecond)))
	c := soarClient(t, soar.URL)
	waitStored(t, c, []string{"small1", "small2"}, 10*time.Second)
	testkit.WaitFor(t, 10*time.Second, func() error {
		if got := metric(t, fw.fw, forwarder.MetricDeadLettered, `reason="phantom_rejected"`); got != 1 {
			return fmt.Errorf("phantom_rejected dead letters = %v, want 1", got)
		}
		return nil
	})
	if !strings.Contains(fw.logs.String(), "413") {
		t.Errorf("the log does not say why the event was refused:\n%s", fw.logs.String())
	}

	// The limit is raised; replaying delivers the event, once, even when
	// the replay is repeated.
	soar.Stop()
	soarAt := restartAt(t, soar.URL, mockphantom.Config{DBPath: dbPath})
	js, _ := jetstream.New(nc)
	dl, err := deadletters.Open(context.Background(), js, forwarder.Defaults().NATS.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dl.Replay(context.Background(), deadletters.Filter{})
	if err != nil || res.Replayed != 1 {
		t.Fatalf("replay = %+v, %v; want 1 replayed", res, err)
	}
	c = soarClient(t, soarAt)
	got := waitStored(t, c, []string{"small1", "small2", "huge"}, 15*time.Second)
	if got["huge"].Container != got["small1"].Container {
		t.Errorf("the replayed alert went to case %d, not its incident's case %d", got["huge"].Container, got["small1"].Container)
	}
	again, err := dl.Replay(context.Background(), deadletters.Filter{})
	if err != nil || again.Replayed != 0 {
		t.Errorf("second replay = %+v, %v; want nothing left", again, err)
	}
}

func TestStopGivesBackHeldEvents(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.DrainTimeout = time.Second
	fw := startForwarder(t, cfg)
	nc := connect(t, n.URL())
	soar.SetFaults(mockphantom.Faults{DownUntil: time.Now().Add(time.Hour)})
	markers := []string{"s1", "s2", "s3", "s4", "s5"}
	for i, m := range markers {
		publish(t, nc, shell("555555555555", m, time.Now().UTC().Add(time.Duration(i)*time.Millisecond)))
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		if metric(t, fw.fw, forwarder.MetricRetried, "") < 1 {
			return fmt.Errorf("not retrying yet")
		}
		return nil
	})
	start := time.Now()
	if err := fw.stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stop took %s with a 1s drain timeout", took)
	}
	soar.SetFaults(mockphantom.Faults{})
	startForwarder(t, cfg)
	waitStored(t, soarClient(t, soar.URL), markers, 15*time.Second)
}

// TestStopGivesBackPrefetchedEvents: on a graceful stop the forwarder gives
// back at once not only the batch a worker holds and the events queued for
// the workers, but also those its NATS client had prefetched, so that
// another replica takes them at once instead of after AckWait.
func TestStopGivesBackPrefetchedEvents(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.DrainTimeout = time.Second
	cfg.NATS.AckWait = 10 * time.Minute // a lost event would not come back within this test
	// One worker holding a batch of 2, 2 queued for it, and up to 4
	// prefetched by the client: 12 events fill every stage.
	cfg.BatchSize, cfg.Workers = 2, 1
	fw := startForwarder(t, cfg)
	nc := connect(t, n.URL())
	soar.SetFaults(mockphantom.Faults{DownUntil: time.Now().Add(time.Hour)})
	var markers []string
	for i := range 12 {
		m := fmt.Sprintf("p%02d", i)
		markers = append(markers, m)
		publish(t, nc, shell("666666666666", m, time.Now().UTC().Add(time.Duration(i)*time.Millisecond)))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(t.Context(), cfg.NATS.Stream, cfg.NATS.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the client has prefetched beyond what the worker and its
	// queue hold (2 + 2 + 1 waiting to be queued).
	testkit.WaitFor(t, 10*time.Second, func() error {
		info, err := cons.Info(t.Context())
		if err != nil {
			return err
		}
		if info.NumAckPending <= 5 {
			return fmt.Errorf("%d events handed to the forwarder so far", info.NumAckPending)
		}
		return nil
	})
	if err := fw.stop(); err != nil {
		t.Fatal(err)
	}
	// The next forwarder gets every event at once; one held back by the
	// stopped forwarder would come back only after AckWait.
	soar.SetFaults(mockphantom.Faults{})
	startForwarder(t, cfg)
	waitStored(t, soarClient(t, soar.URL), markers, 20*time.Second)
}
