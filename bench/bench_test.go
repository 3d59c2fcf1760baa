package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

func TestFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--events", "99"}, "--events and --single-events must be at least 100"},
		{[]string{"--workers", "0"}, "--workers positive"},
		{[]string{"--modes", "grouped,fast"}, `--modes: unknown mode "fast"`},
		{[]string{"-events", "1000"}, "unknown shorthand flag"},
		{[]string{"extra"}, "unknown command"},
	} {
		streams, _, _, _ := genericiooptions.NewTestIOStreams()
		err := Run(t.Context(), tt.args, streams, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("bench %v: error %v, want one containing %q", tt.args, err, tt.wantErr)
		}
	}
}

func TestModes(t *testing.T) {
	t.Parallel()
	o := defaultOptions()
	o.modes = "single, grouped"
	modes, err := o.validate()
	if err != nil {
		t.Fatal(err)
	}
	want := []mode{
		{name: "grouping off", window: 0, perIncident: 1, events: 20_000},
		{name: "grouping on", window: 5 * time.Minute, perIncident: 100, events: 100_000},
	}
	if len(modes) != len(want) || modes[0] != want[0] || modes[1] != want[1] {
		t.Errorf("modes = %+v, want %+v", modes, want)
	}
}

// The requests the mock SOAR limit sends must be the forwarder's: each
// alert once, per batch one request per case, the first of a case
// creating it.
func TestForwarderRequests(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		n, perIncident, batch int
		wantReqs              int
	}{
		// 10 incidents at a time, 100 alerts each: every batch of 500
		// holds 50 alerts of each of 10 incidents.
		{n: 2000, perIncident: 100, batch: 500, wantReqs: 40},
		// a case per alert: a create request per alert.
		{n: 300, perIncident: 1, batch: 100, wantReqs: 300},
	} {
		w := newWorkload(tt.n, tt.perIncident, time.Unix(0, 0))
		reqs := forwarderRequests(w, tt.batch)
		if len(reqs) != tt.wantReqs {
			t.Errorf("n=%d per incident %d: %d requests, want %d", tt.n, tt.perIncident, len(reqs), tt.wantReqs)
		}
		seen := make([]bool, tt.n)
		created := map[int]bool{}
		for k, r := range reqs {
			if r.create == created[r.incident] {
				t.Fatalf("request %d (incident %d): create %v, but the case was created before: %v", k, r.incident, r.create, created[r.incident])
			}
			created[r.incident] = true
			for _, i := range r.alerts {
				if seen[i] || incidentOf(i, tt.perIncident) != r.incident {
					t.Fatalf("request %d carries alert %d (incident %d, seen before %v), want each alert once with its incident %d",
						k, i, incidentOf(i, tt.perIncident), seen[i], r.incident)
				}
				seen[i] = true
			}
		}
		for i, ok := range seen {
			if !ok {
				t.Fatalf("alert %d is in no request", i)
			}
		}
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
