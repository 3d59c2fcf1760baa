package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

func TestFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--events", "99"}, "--events must be at least 100"},
		{[]string{"--baseline-duration", "0s"}, "--baseline-events and --baseline-duration must be positive"},
		{[]string{"--max-in-flight", "-1"}, "must not be negative"},
		{[]string{"--soar-latency", "-5ms"}, "--soar-latency: -5ms is negative"},
		{[]string{"--soar-latency", "fast"}, `invalid argument "fast" for "--soar-latency"`},
		{[]string{"--incidents", "10,0"}, "--incidents: 0 is not positive"},
		{[]string{"--modes", "grouped"}, "unknown flag: --modes"},
		{[]string{"extra"}, "unknown command"},
	} {
		streams, _, _, _ := genericiooptions.NewTestIOStreams()
		err := Run(t.Context(), tt.args, streams, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("bench %v: error %v, want one containing %q", tt.args, err, tt.wantErr)
		}
	}
}

// parse parses args as the command does and returns the options.
func parse(t *testing.T, args ...string) options {
	t.Helper()
	o := defaultOptions()
	cmd := &cobra.Command{}
	o.addFlags(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return o
}

func TestScenarios(t *testing.T) {
	t.Parallel()
	ms20 := 20 * time.Millisecond
	for _, tt := range []struct {
		args []string
		want []scenario
	}{
		{nil, []scenario{{0, 10}, {0, 1000}, {ms20, 10}, {ms20, 1000}}},
		{[]string{"--soar-latency", "20ms", "--incidents", "1000,10"}, []scenario{{ms20, 1000}, {ms20, 10}}},
		{[]string{"--soar-latency=0s,1.5ms", "--incidents=1"}, []scenario{{0, 1}, {1500 * time.Microsecond, 1}}},
	} {
		got, err := parse(t, tt.args...).validate()
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("scenarios of %v = %v, %v; want %v", tt.args, got, err, tt.want)
		}
	}
}

// The report echoes the flags given so that they can be given again.
func TestEchoedFlags(t *testing.T) {
	t.Parallel()
	o := defaultOptions()
	cmd := &cobra.Command{}
	o.addFlags(cmd)
	if err := cmd.ParseFlags([]string{"--soar-latency", "20ms,0ms", "--incidents=1000", "--events", "500"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"--events=500", "--incidents=1000", "--soar-latency=20ms,0s"}
	if got := setFlags(cmd); !slices.Equal(got, want) {
		t.Errorf("echoed flags %q, want %q", got, want)
	}
}

// The forwarder runs with its defaults unless a flag tunes it; then only
// what was tuned is passed.
func TestForwarderEnvironment(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args       []string
		wantTuned  []string
		batch, cap int
	}{
		{nil, nil, forwarder.Defaults().BatchSize, forwarder.Defaults().MaxInFlight},
		{[]string{"--max-in-flight", "64"}, []string{"MAX_IN_FLIGHT=64"}, forwarder.Defaults().BatchSize, 64},
		{[]string{"--batch", "500", "--workers", "4"}, []string{"BATCH_SIZE=500", "WORKERS=4"}, 500, forwarder.Defaults().MaxInFlight},
	} {
		o := parse(t, tt.args...)
		h := &harness{o: o, getenv: func(k string) string { return map[string]string{"GOGC": "200", "HOME": "/root"}[k] }}
		env := h.forwarderEnv("nats://n", "http://s", "127.0.0.1:1")
		var tuned []string
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			switch k {
			case "BATCH_SIZE", "WORKERS", "MAX_IN_FLIGHT":
				tuned = append(tuned, kv)
			case "GROUP_WINDOW", "HOME":
				t.Errorf("%v: the forwarder's environment holds %s", tt.args, kv)
			}
		}
		if !slices.Equal(tuned, tt.wantTuned) || !slices.Contains(env, "GOGC=200") {
			t.Errorf("%v: environment %v, want tuned %v and GOGC=200", tt.args, env, tt.wantTuned)
		}
		if o.batchSize() != tt.batch || o.inFlight() != tt.cap {
			t.Errorf("%v: batch %d, in flight %d; want %d, %d", tt.args, o.batchSize(), o.inFlight(), tt.batch, tt.cap)
		}
	}
}

// Alert i belongs to incident i % incidents: its container and pod are
// the incident's.
func TestIncidentAssignment(t *testing.T) {
	t.Parallel()
	for _, incidents := range []int{1, 10, 1000} {
		w := newWorkload(2500, incidents, time.Unix(0, 0))
		containers := map[string]bool{}
		for i, ev := range w.events {
			want := shellAlert(i, i%incidents, ev.Time)
			got := ev.OutputFields.String("container.id")
			if got != want.OutputFields.String("container.id") || ev.OutputFields.String("k8s.pod.name") != want.OutputFields.String("k8s.pod.name") {
				t.Fatalf("%d incidents: alert %d is in container %s, want incident %d's", incidents, i, got, i%incidents)
			}
			containers[got] = true
		}
		if len(containers) != incidents {
			t.Errorf("%d incidents: alerts come from %d containers", incidents, len(containers))
		}
		if incidents == 1000 && w.events[0].OutputFields.String("container.id") == w.events[1].OutputFields.String("container.id") {
			t.Errorf("with 1,000 incidents, consecutive alerts share a container")
		}
	}
}

// requestsOf makes requests for w: each list of alerts is one request,
// the first of its incident creating the case.
func requestsOf(w *workload, lists ...[]int) []request {
	created := map[int]bool{}
	var reqs []request
	for _, alerts := range lists {
		inc := incidentOf(alerts[0], w.incidents)
		reqs = append(reqs, request{create: !created[inc], incident: inc, alerts: alerts})
		created[inc] = true
	}
	return reqs
}

// The mock SOAR limit replays the requests the forwarder sent, read back
// from what SOAR stored: sent to a real mock, they read back the same.
func TestRequestsReadBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newWorkload(12, 3, time.Now().UTC())
	want := requestsOf(w, []int{0, 3}, []int{1}, []int{6, 9}, []int{2, 5, 8, 11}, []int{4, 7, 10})
	_, url, stop, err := startMock(ctx, t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	plan, err := planRequests(w, want)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{}
	if err := inParallel(len(want), 1, func(k int) error { return plan.send(ctx, c, url, k) }); err != nil {
		t.Fatal(err)
	}
	got, err := sentRequests(ctx, url, w)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read back %v, %v; want %v", got, err, want)
	}
}

func TestSplitRequestsRefusesWhatNoRequestSent(t *testing.T) {
	t.Parallel()
	w := newWorkload(4, 2, time.Unix(0, 0))
	art := func(i int, last bool) phantom.Artifact {
		return phantom.Artifact{ID: int64(i + 1), Container: int64(i%2 + 1), SourceDataIdentifier: forwarder.ArtifactID(w.events[i].ID()), RunAutomation: last}
	}
	for _, tt := range []struct {
		arts    []phantom.Artifact
		wantErr string
	}{
		{[]phantom.Artifact{art(0, false), art(2, true), art(1, false)}, "the last 1 artifacts end no request"},
		{[]phantom.Artifact{art(0, false), art(1, true)}, "alerts of incidents 0 and 1"},
		{[]phantom.Artifact{{ID: 9, SourceDataIdentifier: "falco-event-other", RunAutomation: true}}, "is no alert of the workload"},
	} {
		if _, err := splitRequests(tt.arts, w); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("splitRequests: error %v, want one containing %q", err, tt.wantErr)
		}
	}
}

func TestLatencies(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(100, 0)
	published, stored := map[string]time.Time{}, map[string]time.Time{}
	for i := range 200 {
		id := fmt.Sprint(i)
		published[id] = t0.Add(time.Duration(i) * 10 * time.Millisecond)
		// 1 ms each, but alerts 150 to 153 take 150 ms.
		d := time.Millisecond
		if i >= 150 && i < 154 {
			d = 150*time.Millisecond + time.Duration(i-150)*time.Millisecond
		}
		stored[id] = published[id].Add(d)
	}
	s, err := latencies(published, stored)
	if err != nil {
		t.Fatal(err)
	}
	want := latencyStats{n: 200, p50: time.Millisecond, p99: 152 * time.Millisecond, pmax: 153 * time.Millisecond,
		over100ms: 4, maxAt: 1530 * time.Millisecond}
	if s != want {
		t.Errorf("latencies = %+v, want %+v", s, want)
	}
	delete(stored, "7")
	if _, err := latencies(published, stored); err == nil || !strings.Contains(err.Error(), "alert 7 was published but not stored") {
		t.Errorf("with alert 7 not stored: error %v", err)
	}
}

// The baseline maps priorities as the 2018 function did, which is also
// what the forwarder does.
func TestLegacySeverity(t *testing.T) {
	t.Parallel()
	for p := falco.PriorityDebug; p <= falco.PriorityEmergency; p++ {
		if got, want := legacySeverity(p.String()), forwarder.Severity(p); got != want {
			t.Errorf("legacySeverity(%q) = %q, want %q", p, got, want)
		}
	}
}

// The baseline's request, against a real mock SOAR: one container per
// alert with what the 2018 function sent, no artifact.
func TestBaselineRequestShape(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	soar, url, stop, err := startMock(ctx, t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	w := newWorkload(1, 1, time.Date(2018, 7, 12, 14, 36, 55, 123456789, time.UTC))
	ct, err := legacyContainer(w.bodies[0])
	if err != nil {
		t.Fatal(err)
	}
	client, err := phantom.New(phantom.Config{BaseURL: url, Credentials: phantom.StaticCredentials{User: soarUser, Password: soarPassword}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateContainer(ctx, ct); err != nil {
		t.Fatal(err)
	}
	page, err := client.Containers(ctx, phantom.Query{})
	if err != nil || len(page.Data) != 1 {
		t.Fatalf("containers = %+v, %v; want one", page, err)
	}
	got, ev := page.Data[0], w.events[0]
	want := phantom.Container{Name: ev.Rule, Description: ev.Output, Severity: "low", Label: "events", Status: "new",
		StartTime: "2018-07-12T14:36:55.123456Z"}
	if got.Name != want.Name || got.Description != want.Description || got.Severity != want.Severity ||
		got.Label != want.Label || got.Status != want.Status || got.StartTime != want.StartTime || got.ArtifactCount != 0 {
		t.Errorf("stored container = %+v, want %+v without artifacts", got, want)
	}
	var data map[string]string
	wantData := map[string]string{"container.id": ev.OutputFields.String("container.id"), "k8s.pod.name": ev.OutputFields.String("k8s.pod.name")}
	if err := json.Unmarshal(got.Data, &data); err != nil || fmt.Sprint(data) != fmt.Sprint(wantData) {
		t.Errorf("data = %s (%v), want %v", got.Data, err, wantData)
	}
	if st := soar.Stats(); writeRequests(st) != 1 || st.ArtifactsCreated != 0 {
		t.Errorf("the mock saw %d writes and stored %d artifacts, want 1 and 0", writeRequests(st), st.ArtifactsCreated)
	}
}

// A whole baseline run on an embedded NATS and the mock: one write per
// alert, stopped by the alerts or by the time, whichever comes first.
func TestBaselineRun(t *testing.T) {
	t.Parallel()
	w := newWorkload(30, 10, time.Now().UTC())
	r, err := runBaseline(t.Context(), t.TempDir(), 0, w, 20, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r.alerts != 20 || r.stoppedBy != "alerts" || r.writeReqs != 20 || r.restReqs != 20 || r.rate() <= 0 {
		t.Errorf("baseline = %+v, want 20 alerts, 20 writes, stopped by alerts", r)
	}
	r, err = runBaseline(t.Context(), filepath.Join(t.TempDir(), "slow"), 20*time.Millisecond, w, 30, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.stoppedBy != "time" || r.alerts < 1 || r.alerts > 6 {
		t.Errorf("baseline with 20 ms SOAR for 100 ms = %+v, want 1 to 6 alerts, stopped by time", r)
	}
}

func TestRequestCounts(t *testing.T) {
	t.Parallel()
	st := mockphantom.Stats{ByRoute: map[string]int64{
		"POST /rest/container": 3, "POST /rest/artifact": 4, "GET /rest/container": 5, "GET /rest/version": 1,
		"GET /healthz": 7, "GET /mock/stats": 2, "unmatched": 1,
	}}
	if w, all := writeRequests(st), restRequests(st); w != 7 || all != 13 {
		t.Errorf("writes, /rest requests = %d, %d; want 7, 13", w, all)
	}
}

// fakeResult is a scenario's result with the figures the targets read.
func fakeResult(latency time.Duration, incidents int, rate, baseRate float64, cpuPerAlert, p99 time.Duration, rss int64) result {
	return result{
		sc: scenario{latency, incidents},
		fw: fwResult{alerts: 1000, rate: rate, cpu: cpuPerAlert * 1000, lat: latencyStats{p99: p99}, rssThroughput: rss, rssLatency: rss / 2},
		// baseRate alerts/s: 100 alerts in 100/baseRate seconds.
		base: baselineResult{alerts: 100, elapsed: time.Duration(100 / baseRate * float64(time.Second))},
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	results := []result{
		fakeResult(0, 10, 5000, 900, 50*time.Microsecond, 20*ms, 40<<20),
		fakeResult(0, 1000, 2000, 900, 51*time.Microsecond, 20*ms, 40<<20),
		fakeResult(20*ms, 10, 3000, 45, 30*time.Microsecond, 99*ms, 64<<20),
		fakeResult(20*ms, 1000, 999, 50, 30*time.Microsecond, 100*ms, 63<<20),
	}
	got := map[string]verdict{}
	for _, c := range checkTargets(defaultOptions(), results) {
		got[c.target+" | "+c.scenario] = c.verdict
	}
	want := map[string]verdict{
		">= 3,000 alerts/s, 20 ms SOAR, 10 incidents | SOAR 20 ms, 10 incidents":                     met,
		">= 20x the baseline, 20 ms SOAR, 10 incidents | SOAR 20 ms, 10 incidents":                   met,
		">= 1,000 alerts/s, 20 ms SOAR, 1,000 incidents | SOAR 20 ms, 1,000 incidents":               notMet,
		">= 20x the baseline, 20 ms SOAR, 1,000 incidents | SOAR 20 ms, 1,000 incidents":             notMet,
		">= 5,000 alerts/s, SOAR on the same machine, 10 incidents | SOAR 0 ms, 10 incidents":        met,
		"forwarder CPU <= 50 µs per alert | SOAR 0 ms, 10 incidents":                                 met,
		"forwarder CPU <= 50 µs per alert | SOAR 0 ms, 1,000 incidents":                              notMet,
		"forwarder CPU <= 50 µs per alert | SOAR 20 ms, 10 incidents":                                met,
		"forwarder CPU <= 50 µs per alert | SOAR 20 ms, 1,000 incidents":                             met,
		"p99 publish -> stored < 100 ms at 1,000 alerts/s, 20 ms SOAR | SOAR 20 ms, 10 incidents":    met,
		"p99 publish -> stored < 100 ms at 1,000 alerts/s, 20 ms SOAR | SOAR 20 ms, 1,000 incidents": notMet,
		"forwarder peak RSS < 64 MiB | SOAR 0 ms, 10 incidents":                                      met,
		"forwarder peak RSS < 64 MiB | SOAR 0 ms, 1,000 incidents":                                   met,
		"forwarder peak RSS < 64 MiB | SOAR 20 ms, 10 incidents":                                     notMet,
		"forwarder peak RSS < 64 MiB | SOAR 20 ms, 1,000 incidents":                                  met,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d checks, want %d: %v", len(got), len(want), got)
	}

	// Without the 20 ms scenarios, or at another rate, those targets are
	// not measured.
	o := defaultOptions()
	o.rate = 500
	for _, c := range checkTargets(o, results[:2]) {
		if strings.Contains(c.target, "20 ms") && c.verdict != notMeasured {
			t.Errorf("%s | %s: %v, want not measured", c.target, c.scenario, c.verdict)
		}
	}
}

func TestThousands(t *testing.T) {
	t.Parallel()
	for v, want := range map[float64]string{0: "0", 999.4: "999", 999.6: "1,000", 1234567: "1,234,567", -4321: "-4,321"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestRecorderNotesStoredAlerts(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	status := http.StatusOK
	// Like the mock, the handler reads the whole body, then answers.
	h := rec.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
	}))
	body := `[{"source_data_identifier":"falco-event-a"},{"source_data_identifier":"falco-event-b"}]`
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/rest/artifact", strings.NewReader(body)))
	first := rec.times()
	if len(first) != 2 || first["a"].IsZero() || first["b"].IsZero() {
		t.Fatalf("times = %v, want a and b", first)
	}
	// A refused write stores nothing; a repeated one keeps the first time.
	status = http.StatusBadRequest
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`"source_data_identifier":"falco-event-c"`)))
	status = http.StatusOK
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte(body))))
	if got := rec.times(); rec.count() != 2 || !got["a"].Equal(first["a"]) {
		t.Errorf("times = %v after a refused and a repeated write, want %v", got, first)
	}
}
