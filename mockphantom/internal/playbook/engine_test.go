package playbook

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/syncbuf"
)

// fakeRecorder keeps runs in memory; like the store, it starts a playbook
// once per case.
type fakeRecorder struct {
	mu   sync.Mutex
	runs []fakeRun
}

type fakeRun struct {
	RunStart
	Result
	finished bool
}

func (r *fakeRecorder) StartRun(_ context.Context, s RunStart) (int64, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, run := range r.runs {
		if run.CaseID == s.CaseID && run.Playbook == s.Playbook {
			return 0, false, nil
		}
	}
	r.runs = append(r.runs, fakeRun{RunStart: s, Result: Result{Status: StatusRunning}})
	return int64(len(r.runs)), true, nil
}

func (r *fakeRecorder) FinishRun(_ context.Context, id int64, res Result) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[id-1].Result, r.runs[id-1].finished = res, true
	return nil
}

func (r *fakeRecorder) all() []fakeRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]fakeRun(nil), r.runs...)
}

// received is one request the fake responder got.
type received struct {
	path, auth string
	body       map[string]any
}

// fakeResponder is a fake falco-phantom-responder over TLS: answer says what
// to answer to the n-th request (from 1).
type fakeResponder struct {
	srv    *httptest.Server
	caFile string
	first  chan struct{} // closed when the first request arrives

	mu  sync.Mutex
	got []received
}

func newResponder(t *testing.T, answer func(n int, w http.ResponseWriter)) *fakeResponder {
	t.Helper()
	rs := &fakeResponder{first: make(chan struct{})}
	rs.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		rs.mu.Lock()
		rs.got = append(rs.got, received{path: r.URL.Path, auth: r.Header.Get("Authorization"), body: body})
		n := len(rs.got)
		rs.mu.Unlock()
		if n == 1 {
			close(rs.first)
		}
		answer(n, w)
	}))
	t.Cleanup(rs.srv.Close)
	rs.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rs.srv.Certificate().Raw})
	if err := os.WriteFile(rs.caFile, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	return rs
}

func (rs *fakeResponder) requests() []received {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]received(nil), rs.got...)
}

func answerJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

const okAnswer = `{"request_id": "r-1", "action": "isolate", "changed": true, "dry_run": false,
	"message": "pod shop/web-1 isolated", "warnings": ["policy web-allow also selects the pod"]}`

// engineFor builds an engine whose one playbook, written as yaml (with
// %s for the responder's URL and CA file), calls url. Logs go to logs.
func engineFor(t *testing.T, yamlFmt, url, caFile string, logs io.Writer) (*Engine, *fakeRecorder) {
	t.Helper()
	dir := files(t, map[string]string{"token": testToken + "\n"})
	set, err := Parse([]byte(fmt.Sprintf(yamlFmt, url, caFile)), dir, testKnown)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	t.Cleanup(set.Close)
	rec := &fakeRecorder{}
	e := NewEngine(set, rec, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	e.Retry.Backoff = time.Millisecond
	return e, rec
}

const isolateYAML = `
- name: isolate-shell
  match: {rule: Terminal shell in container, severity: [low, medium]}
  action: isolate
  params: {dry_run: true}
  responder: {url: "%s", token_file: token, ca_file: "%s"}
`

var shellCase = Case{ID: 42, Name: "Terminal shell in container", Label: "events", Severity: "low",
	Rule: "Terminal shell in container", Namespace: "shop", Pod: "web-1", ContainerID: "3f2a9c1b7d4e"}

func TestRunCallsTheResponder(t *testing.T) {
	t.Parallel()
	rs := newResponder(t, func(_ int, w http.ResponseWriter) { answerJSON(w, http.StatusOK, okAnswer) })
	var logs syncbuf.Buffer
	e, rec := engineFor(t, isolateYAML, rs.srv.URL+"/", rs.caFile, &logs)

	if err := e.Run(t.Context(), shellCase); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := rs.requests()
	if len(got) != 1 {
		t.Fatalf("responder got %d requests, want 1", len(got))
	}
	if got[0].path != "/v1/actions/isolate" || got[0].auth != "Bearer "+testToken {
		t.Errorf("request to %q with Authorization %q; want /v1/actions/isolate with the bearer token", got[0].path, got[0].auth)
	}
	wantBody := map[string]any{"namespace": "shop", "pod": "web-1", "container_id": "3f2a9c1b7d4e", "case_id": float64(42),
		"reason": "Terminal shell in container", "requested_by": "mockphantom playbook isolate-shell", "dry_run": true}
	if !reflect.DeepEqual(got[0].body, wantBody) {
		t.Errorf("body = %v, want %v", got[0].body, wantBody)
	}
	runs := rec.all()
	if len(runs) != 1 {
		t.Fatalf("%d runs recorded, want 1", len(runs))
	}
	r := runs[0]
	wantStart := RunStart{CaseID: 42, Playbook: "isolate-shell", Action: ActionIsolate, Name: "isolate shop/web-1"}
	if r.RunStart != wantStart || !r.finished || r.Status != StatusSuccess {
		t.Errorf("run = %+v, want %+v finished with success", r, wantStart)
	}
	if want := "pod shop/web-1 isolated; warnings: policy web-allow also selects the pod"; r.Message != want {
		t.Errorf("message = %q, want %q", r.Message, want)
	}
	if string(r.Answer) != okAnswer {
		t.Errorf("answer kept = %s, want the responder's answer as it came", r.Answer)
	}

	// Once per case: the same case again sends nothing.
	if err := e.Run(t.Context(), shellCase); err != nil {
		t.Fatalf("Run again: %v", err)
	}
	if n := len(rs.requests()); n != 1 {
		t.Errorf("after running the same case again the responder got %d requests, want still 1", n)
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("logs contain the token:\n%s", logs.String())
	}
}

func TestMatching(t *testing.T) {
	t.Parallel()
	const yaml = `
- name: shells
  match: {rule: [Terminal shell in container, Other rule]}
  action: describe
  responder: {url: "%s", token_file: token, ca_file: "%s"}
- name: high-events
  match: {severity: high, label: events}
  action: isolate
  responder: {url: "%[1]s", token_file: token, ca_file: "%[2]s"}
`
	rs := newResponder(t, func(int, http.ResponseWriter) {})
	e, _ := engineFor(t, yaml, rs.srv.URL, rs.caFile, io.Discard)
	for _, tt := range []struct {
		name string
		c    Case
		want []string
	}{
		{"rule of the artifact", Case{Rule: "Terminal shell in container", Name: "renamed", Severity: "low", Label: "events"}, []string{"shells"}},
		{"container name when the artifact has no rule", Case{Name: "Other rule", Severity: "low"}, []string{"shells"}},
		{"the artifact's rule wins over the name", Case{Rule: "Write below etc", Name: "Terminal shell in container"}, nil},
		{"every field must match", Case{Rule: "x", Severity: "high", Label: "events"}, []string{"high-events"}},
		{"label differs", Case{Rule: "x", Severity: "high", Label: "other"}, nil},
		{"both", Case{Rule: "Other rule", Severity: "high", Label: "events"}, []string{"shells", "high-events"}},
	} {
		if got := e.Matching(tt.c); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Matching = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestRunRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	rs := newResponder(t, func(n int, w http.ResponseWriter) {
		switch n {
		case 1:
			answerJSON(w, http.StatusServiceUnavailable, `{"error": {"code": "unavailable", "message": "starting"}}`)
		case 2:
			w.Header().Set("Retry-After", "1")
			answerJSON(w, http.StatusTooManyRequests, `{"error": {"code": "rate_limited", "message": "slow down"}}`)
		default:
			answerJSON(w, http.StatusOK, okAnswer)
		}
	})
	e, rec := engineFor(t, isolateYAML, rs.srv.URL, rs.caFile, io.Discard)
	start := time.Now()
	if err := e.Run(t.Context(), shellCase); err != nil {
		t.Fatal(err)
	}
	if n := len(rs.requests()); n != 3 {
		t.Errorf("responder got %d requests, want 3 (two failures, then success)", n)
	}
	if r := rec.all()[0]; r.Status != StatusSuccess || !strings.HasPrefix(r.Message, "pod shop/web-1 isolated") {
		t.Errorf("run = %+v, want success with the responder's message", r.Result)
	}
	// The backoff is 1 ms; only Retry-After makes the wait last a second.
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("Run took %s; Retry-After: 1 asked for a second between the 2nd and 3rd call", d)
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "https://" + refused.Addr().String()
	refused.Close() // nothing listens there any more

	tests := []struct {
		name     string
		answer   func(n int, w http.ResponseWriter)
		url      string // "" for the fake responder
		caFile   string // "" for the fake responder's, "system" for none (the system's roots)
		c        Case
		requests int
		want     string
	}{
		{"always 5xx", func(_ int, w http.ResponseWriter) {
			answerJSON(w, http.StatusBadGateway, `{"request_id": "x", "error": {"code": "kubernetes_error", "message": "the API server refused"}}`)
		}, "", "", shellCase, 4, "the responder answered 502 kubernetes_error: the API server refused (after 4 attempts)"},
		{"refusal is not retried", func(_ int, w http.ResponseWriter) {
			answerJSON(w, http.StatusForbidden, `{"error": {"code": "namespace_not_allowed", "message": "namespace shop is not allowed"}}`)
		}, "", "", shellCase, 1, "the responder answered 403 namespace_not_allowed: namespace shop is not allowed"},
		{"wrong token", func(_ int, w http.ResponseWriter) {
			answerJSON(w, http.StatusUnauthorized, `{"error": {"code": "unauthorized", "message": "not the token"}}`)
		}, "", "", shellCase, 1, "401 unauthorized: not the token (check responder.token_file)"},
		{"not JSON", func(_ int, w http.ResponseWriter) {
			http.Error(w, "upstream connect error", http.StatusServiceUnavailable)
		}, "", "", shellCase, 4, "the responder answered 503 upstream connect error (after 4 attempts)"},
		{"Retry-After too long", func(_ int, w http.ResponseWriter) {
			w.Header().Set("Retry-After", "3600")
			answerJSON(w, http.StatusTooManyRequests, `{"error": {"code": "rate_limited", "message": "over the limit"}}`)
		}, "", "", shellCase, 1, "429 rate_limited: over the limit; it asks to come back in 1h0m0s, longer than the 30s a playbook waits"},
		{"redirect", func(_ int, w http.ResponseWriter) {
			w.Header().Set("Location", "https://elsewhere.example/")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}, "", "", shellCase, 1, "307 Temporary Redirect (redirects are not followed"},
		{"no target", nil, "", "", Case{ID: 7, Rule: "Terminal shell in container", Severity: "low"}, 0,
			"not sent: the case's first artifact names no pod (cef kubernetesPodName) and no container (cef containerId)"},
		{"connection refused", nil, refusedURL, "", shellCase, 0, "connection refused (after 4 attempts)"},
		{"untrusted certificate", nil, "", "system", shellCase, 0, "the responder's certificate is not trusted (check responder.ca_file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			answer := tt.answer
			if answer == nil {
				answer = func(_ int, w http.ResponseWriter) { answerJSON(w, http.StatusOK, okAnswer) }
			}
			rs := newResponder(t, answer)
			url, ca := rs.srv.URL, rs.caFile
			if tt.url != "" {
				url = tt.url
			}
			if tt.caFile == "system" {
				ca = ""
			}
			var logs syncbuf.Buffer
			e, rec := engineFor(t, isolateYAML, url, ca, &logs)
			if err := e.Run(t.Context(), tt.c); err != nil {
				t.Fatal(err)
			}
			if n := len(rs.requests()); n != tt.requests {
				t.Errorf("responder got %d requests, want %d", n, tt.requests)
			}
			runs := rec.all()
			if len(runs) != 1 || !runs[0].finished || runs[0].Status != StatusFailed {
				t.Fatalf("runs = %+v, want one, finished and failed", runs)
			}
			if !strings.Contains(runs[0].Message, tt.want) {
				t.Errorf("message = %q, want it to contain %q", runs[0].Message, tt.want)
			}
			for what, text := range map[string]string{"logs": logs.String(), "message": runs[0].Message, "answer": string(runs[0].Answer)} {
				if strings.Contains(text, testToken) {
					t.Errorf("%s contain the token: %s", what, text)
				}
			}
		})
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	rs := newResponder(t, func(_ int, w http.ResponseWriter) { answerJSON(w, http.StatusServiceUnavailable, `{}`) })
	e, rec := engineFor(t, isolateYAML, rs.srv.URL, rs.caFile, io.Discard)
	e.Retry.Backoff = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, shellCase) }()
	select {
	case <-rs.first:
	case err := <-done:
		t.Fatalf("Run returned before calling the responder: %v", err)
	}
	// The run is reading the first answer or waiting an hour to try again.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r := rec.all()[0]
	if r.Status != StatusFailed || !strings.HasPrefix(r.Message, "mockphantom stopped before the") {
		t.Errorf("run = %+v, want failed because mockphantom stopped", r.Result)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"Tue, 01 Dec 2026 10:00:05 GMT": 5 * time.Second,
		"Tue, 01 Dec 2026 09:00:00 GMT": 0,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}
