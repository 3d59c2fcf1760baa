package mockphantom

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/poll"
)

func TestFaultErrorRateStoresNothing(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	cid := e.createContainer(map[string]any{"name": "before"})
	e.srv.SetFaults(Faults{ErrorRate: 1})

	requests := []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/rest/container", map[string]any{"name": "c", "label": "events"}},
		{http.MethodPost, "/rest/artifact", []any{map[string]any{"container_id": cid}}},
		{http.MethodPost, "/rest/artifact", map[string]any{"container_id": cid}},
		{http.MethodGet, "/rest/container", nil},
		{http.MethodDelete, "/rest/container/" + itoa(cid), nil},
	}
	for _, rq := range requests {
		e.do(rq.method, rq.path, rq.body, asAdmin).wantFailure(t, http.StatusServiceUnavailable, "injected fault")
	}
	// /mock, /healthz and the web page stay reachable.
	e.do(http.MethodGet, "/healthz", nil, noAuth).wantStatus(t, http.StatusOK)
	e.do(http.MethodGet, "/mock/stats", nil, asAdmin).wantStatus(t, http.StatusOK)
	e.do(http.MethodGet, "/", nil, asAdmin).wantStatus(t, http.StatusOK)

	e.srv.SetFaults(Faults{})
	if got := e.count("/rest/container"); got != 1 {
		t.Errorf("containers = %d, want 1 (the one from before the faults)", got)
	}
	if got := e.count("/rest/artifact"); got != 0 {
		t.Errorf("artifacts = %d, want 0", got)
	}
	if got, want := e.srv.Stats().FaultsInjected, int64(len(requests)); got != want {
		t.Errorf("FaultsInjected = %d, want %d", got, want)
	}
}

func TestFaultThrottleRate(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	e.srv.SetFaults(Faults{ThrottleRate: 1})
	e.do(http.MethodPost, "/rest/container", map[string]any{"name": "c", "label": "events"}, asAdmin).
		wantFailure(t, http.StatusTooManyRequests, "injected fault: throttle rate")
	e.srv.SetFaults(Faults{})
	if got := e.count("/rest/container"); got != 0 {
		t.Errorf("containers = %d, want 0", got)
	}
}

// The in-flight counters see requests as SOAR does: from arrival, with the
// injected latency.
func TestStatsCountRequestsInFlight(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	e.srv.SetFaults(Faults{Latency: 200 * time.Millisecond})
	done := make(chan struct{})
	for range 5 {
		go func() {
			defer func() { done <- struct{}{} }()
			req, _ := http.NewRequest(http.MethodGet, e.url+"/rest/version", nil)
			asAdmin(req)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	err := poll.Until(t.Context(), 5*time.Second, 5*time.Millisecond, func(context.Context) error {
		if got := e.srv.Stats().InFlight; got != 5 {
			return errors.New("not all five in flight yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		<-done
	}
	if st := e.srv.Stats(); st.InFlight != 0 || st.PeakInFlight != 5 {
		t.Errorf("InFlight %d, PeakInFlight %d; want 0 and 5", st.InFlight, st.PeakInFlight)
	}
}

func TestFaultDownUntil(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	e.srv.SetFaults(Faults{DownUntil: time.Now().Add(time.Hour)})
	e.do(http.MethodPost, "/rest/container", map[string]any{"name": "c", "label": "events"}, asAdmin).
		wantFailure(t, http.StatusServiceUnavailable, "server down")

	e.srv.SetFaults(Faults{DownUntil: time.Now().Add(-time.Second)})
	e.createContainer(map[string]any{"name": "after"})
	if got := e.count("/rest/container"); got != 1 {
		t.Errorf("containers = %d, want 1", got)
	}
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	const latency = 150 * time.Millisecond
	e := newTestEnv(t, Config{})
	e.srv.SetFaults(Faults{Latency: latency})
	start := time.Now()
	e.do(http.MethodGet, "/rest/version", nil, asAdmin).wantStatus(t, http.StatusOK)
	if got := time.Since(start); got < latency {
		t.Errorf("request took %v, want at least %v", got, latency)
	}
}

func TestFaultTimeoutStoresNothing(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	e.srv.SetFaults(Faults{TimeoutRate: 1})
	client := &http.Client{Timeout: 200 * time.Millisecond}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/rest/container",
		strings.NewReader(`{"name": "c", "label": "events"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testUser, testPassword)
	res, err := client.Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatalf("request answered %d, want a client timeout", res.StatusCode)
	}
	e.srv.SetFaults(Faults{})
	if got := e.count("/rest/container"); got != 0 {
		t.Errorf("containers = %d, want 0", got)
	}
}

// TestHungRequestsEndOnShutdown checks that Running.Close does not wait
// for requests hung by TimeoutRate.
func TestHungRequestsEndOnShutdown(t *testing.T) {
	t.Parallel()
	s, err := New(t.Context(), Config{DBPath: filepath.Join(t.TempDir(), "db"), InsecureNoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run, err := Serve(t.Context(), s, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetFaults(Faults{TimeoutRate: 1})

	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.Get(run.URL + "/rest/version")
		if err != nil {
			done <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		done <- result{status: res.StatusCode}
	}()
	waitFor(t, 5*time.Second, func() error {
		if s.Stats().FaultsInjected == 0 {
			return errors.New("the request has not reached the fault layer")
		}
		return nil
	})

	start := time.Now()
	if err := run.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if got := time.Since(start); got > shutdownGrace/2 {
		t.Errorf("Close took %v, want it well below the %v grace period", got, shutdownGrace)
	}
	r := <-done
	if r.err != nil || r.status != http.StatusServiceUnavailable {
		t.Errorf("hung request ended with %d, %v; want 503", r.status, r.err)
	}
}

func TestFaultsOverHTTP(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})

	put := e.do(http.MethodPut, "/mock/faults", `{"latency": "10ms", "error_rate": 0.25, "timeout_rate": 0.5, "throttle_rate": 0.125}`, asAdmin)
	put.wantStatus(t, http.StatusOK)
	got := e.do(http.MethodGet, "/mock/faults", nil, asAdmin).decode(t)
	if got["latency"] != "10ms" || got["error_rate"] != 0.25 || got["timeout_rate"] != 0.5 || got["throttle_rate"] != 0.125 {
		t.Errorf("GET /mock/faults = %v, want latency 10ms, error_rate 0.25, timeout_rate 0.5, throttle_rate 0.125", got)
	}
	want := Faults{Latency: 10 * time.Millisecond, ErrorRate: 0.25, TimeoutRate: 0.5, ThrottleRate: 0.125}
	if f := e.srv.currentFaults(); f != want {
		t.Errorf("faults = %+v, want %+v", f, want)
	}

	before := time.Now()
	e.do(http.MethodPut, "/mock/faults", `{"down_for": "30s"}`, asAdmin).wantStatus(t, http.StatusOK)
	f := e.srv.currentFaults()
	if f.DownUntil.Before(before.Add(30*time.Second)) || f.DownUntil.After(time.Now().Add(30*time.Second)) {
		t.Errorf("DownUntil = %v, want now + 30s", f.DownUntil)
	}
	if f.Latency != 0 || f.ErrorRate != 0 {
		t.Errorf("PUT replaces all faults; got %+v", f)
	}
	e.do(http.MethodGet, "/rest/version", nil, asAdmin).wantFailure(t, http.StatusServiceUnavailable, "server down")

	e.do(http.MethodPut, "/mock/faults", `{}`, asAdmin).wantStatus(t, http.StatusOK)
	e.do(http.MethodGet, "/rest/version", nil, asAdmin).wantStatus(t, http.StatusOK)

	for _, bad := range []struct{ body, msg string }{
		{`{"error_rate": 2}`, "error_rate"},
		{`{"timeout_rate": -0.1}`, "timeout_rate"},
		{`{"latency": "fast"}`, "latency"},
		{`{"down_for": "-1s"}`, "down_for"},
		{`{"latency_ms": 5}`, "latency_ms"},
		{`nonsense`, "invalid faults"},
	} {
		e.do(http.MethodPut, "/mock/faults", bad.body, asAdmin).wantFailure(t, http.StatusBadRequest, bad.msg)
	}
}

func TestFaultSeedRepeats(t *testing.T) {
	t.Parallel()
	draw := func() []faultAction {
		s, err := New(t.Context(), Config{DBPath: filepath.Join(t.TempDir(), "db"), InsecureNoAuth: true, FaultSeed: 42})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.SetFaults(Faults{ErrorRate: 0.5})
		var out []faultAction
		for range 200 {
			_, a := s.decide(time.Now())
			out = append(out, a)
		}
		return out
	}
	a, b := draw(), draw()
	errs := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d differs between two servers with the same seed: %v vs %v", i, a[i], b[i])
		}
		if a[i] == faultError {
			errs++
		}
	}
	if errs < 60 || errs > 140 {
		t.Errorf("%d of 200 requests failed with ErrorRate 0.5, want about 100", errs)
	}
}

func TestSetFaultsClamps(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	e.srv.SetFaults(Faults{Latency: -time.Second, ErrorRate: 3, TimeoutRate: -1})
	want := Faults{ErrorRate: 1}
	if got := e.srv.currentFaults(); got != want {
		t.Errorf("faults = %+v, want %+v", got, want)
	}
}

// waitFor retries f until it succeeds or timeout passes, and reports the
// last error.
func waitFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	if err := poll.Until(t.Context(), timeout, 5*time.Millisecond, func(context.Context) error { return f() }); err != nil {
		t.Fatal(err)
	}
}
