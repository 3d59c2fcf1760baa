package mockphantom

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/syncbuf"
)

// responderToken is the bearer token of the fake responder.
const responderToken = "resp-tok-5c1e0d9a"

// fakeResponder stands in for falco-phantom-responder: HTTPS with its own
// certificate, bearer token checked, requests kept.
type fakeResponder struct {
	srv   *httptest.Server
	first chan struct{} // closed when the first request arrives

	mu   sync.Mutex
	got  []responderRequest
	errs []error // what went wrong in the handler (checked by the test)
}

type responderRequest struct {
	path string
	body map[string]any
}

// newFakeResponder answers each request (n counts from 1) with answer,
// once the token is checked; a wrong token gets 401.
func newFakeResponder(t *testing.T, answer func(n int, body map[string]any, w http.ResponseWriter, r *http.Request)) *fakeResponder {
	t.Helper()
	fr := &fakeResponder{first: make(chan struct{})}
	fr.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+responderToken {
			fr.fail(fmt.Errorf("request without the bearer token: Authorization %q", r.Header.Get("Authorization")))
			http.Error(w, `{"error": {"code": "unauthorized", "message": "not the token"}}`, http.StatusUnauthorized)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
			fr.fail(fmt.Errorf("body not JSON (%v) or Content-Type %q", err, r.Header.Get("Content-Type")))
		}
		fr.mu.Lock()
		fr.got = append(fr.got, responderRequest{path: r.URL.Path, body: body})
		n := len(fr.got)
		fr.mu.Unlock()
		if n == 1 {
			close(fr.first)
		}
		answer(n, body, w, r)
	}))
	t.Cleanup(fr.srv.Close)
	return fr
}

func (fr *fakeResponder) fail(err error) {
	fr.mu.Lock()
	fr.errs = append(fr.errs, err)
	fr.mu.Unlock()
}

func (fr *fakeResponder) requests(t *testing.T) []responderRequest {
	t.Helper()
	fr.mu.Lock()
	defer fr.mu.Unlock()
	for _, err := range fr.errs {
		t.Errorf("fake responder: %v", err)
	}
	return append([]responderRequest(nil), fr.got...)
}

// playbooksFile writes the playbooks (yaml, with %[1]s for the responder's
// URL) with the token and the responder's CA next to it.
func playbooksFile(t *testing.T, fr *fakeResponder, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fr.srv.Certificate().Raw})
	for name, content := range map[string]string{
		"token":          responderToken + "\n",
		"ca.pem":         string(ca),
		"playbooks.yaml": strings.ReplaceAll(yaml, "%[1]s", fr.srv.URL),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "playbooks.yaml")
}

const isolatePlaybook = `
- name: isolate-shell
  match:
    rule: Terminal shell in container
  action: isolate
  responder:
    url: %[1]s
    token_file: token
    ca_file: ca.pem
`

// newPlayEnv starts a server with the playbooks and logs at debug level,
// and makes retries quick.
func newPlayEnv(t *testing.T, fr *fakeResponder, yaml string, logs io.Writer) *testEnv {
	t.Helper()
	e := newTestEnv(t, Config{PlaybooksFile: playbooksFile(t, fr, yaml),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	e.srv.playbooks.engine.Retry.Backoff = time.Millisecond
	return e
}

// waitPlaybooks waits until every playbook started so far has finished.
// Runs start before the answer that creates their case, so none is missed.
func (e *testEnv) waitPlaybooks() {
	e.srv.playbooks.running.Wait()
}

// shellCase is a case as the forwarder opens it: container and inline
// artifacts (pkg/forwarder/mapping.go).
func shellCase(sdi, rule, pod string) map[string]any {
	return map[string]any{
		"name": rule, "label": "events", "severity": "low", "status": "new",
		"source_data_identifier": sdi,
		"artifacts": []any{
			shellArtifact(sdi+"-e1", rule, pod),
			shellArtifact(sdi+"-e2", rule, pod),
		},
	}
}

func shellArtifact(sdi, rule, pod string) map[string]any {
	return map[string]any{
		"name": rule, "label": "falco", "type": "falco event", "severity": "low", "source_data_identifier": sdi,
		"cef": map[string]any{
			"falcoRule": rule, "falcoPriority": "Notice", "kubernetesNamespace": "shop",
			"kubernetesPodName": pod, "containerId": "3f2a9c1b7d4e", "containerName": "main",
			"processName": "sh", "commandLine": "sh -c id",
		},
	}
}

// actionRuns returns the action runs of container cid.
func (e *testEnv) actionRuns(cid int64) []map[string]any {
	e.t.Helper()
	r := e.do(http.MethodGet, "/rest/action_run?_filter_container="+itoa(cid), nil, asAdmin)
	r.wantStatus(e.t, http.StatusOK)
	var l struct {
		Count int              `json:"count"`
		Data  []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.body, &l); err != nil || l.Count != len(l.Data) {
		e.t.Fatalf("action run listing %s: %v", r.body, err)
	}
	return l.Data
}

const isolatedAnswer = `{"request_id": "r-1", "action": "isolate", "changed": true, "dry_run": false, "message": "pod shop/web-1 isolated", "warnings": []}`

func TestPlaybookRunsOnNewCases(t *testing.T) {
	t.Parallel()
	var mockURL atomic.Value // set once the mock runs; the responder notes there
	fr := newFakeResponder(t, func(_ int, body map[string]any, w http.ResponseWriter, r *http.Request) {
		// What the real responder does: act, note the outcome in the case
		// (with a SOAR token), answer.
		note := map[string]any{"container_id": body["case_id"], "title": "falco-phantom-responder: isolate",
			"content": "pod shop/web-1 isolated", "note_type": "general", "note_format": "markdown"}
		if ans, err := postJSON(r.Context(), mockURL.Load().(string)+"/rest/note", note); err != nil || ans["success"] != true {
			http.Error(w, fmt.Sprintf("note: %v %v", ans, err), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, isolatedAnswer)
	})
	var logs syncbuf.Buffer
	e := newPlayEnv(t, fr, isolatePlaybook, &logs)
	mockURL.Store(e.url)

	other := e.createContainer(shellCase("c-other", "Write below etc", "web-1"))
	matching := e.createContainer(shellCase("c-shell", "Terminal shell in container", "web-1"))
	// A duplicate of the case, and one more alert in it: not new.
	e.do(http.MethodPost, "/rest/container", shellCase("c-shell", "Terminal shell in container", "web-1"), asAdmin).
		wantFailure(t, http.StatusOK, "duplicate with container id "+itoa(matching))
	e.do(http.MethodPost, "/rest/artifact", []any{withContainer(shellArtifact("c-shell-e3", "Terminal shell in container", "web-1"), matching)}, asAdmin).
		wantStatus(t, http.StatusOK)
	// A case opened without artifacts is new to playbooks when its first
	// artifact arrives, and only then.
	later := e.createContainer(map[string]any{"name": "Terminal shell in container", "source_data_identifier": "c-later"})
	e.waitPlaybooks()
	if n := len(fr.requests(t)); n != 1 {
		t.Fatalf("responder got %d requests, want 1: the matching case only (not its duplicate, its new alert or a case without artifacts)", n)
	}
	e.do(http.MethodPost, "/rest/artifact", withContainer(shellArtifact("c-later-e1", "Terminal shell in container", "web-2"), later), asAdmin).
		wantStatus(t, http.StatusOK)
	e.do(http.MethodPost, "/rest/artifact", withContainer(shellArtifact("c-later-e2", "Terminal shell in container", "web-2"), later), asAdmin).
		wantStatus(t, http.StatusOK)
	e.waitPlaybooks()

	got := fr.requests(t)
	if len(got) != 2 {
		t.Fatalf("responder got %d requests, want 2 (the matching case, the late one): %+v", len(got), got)
	}
	for i, want := range []map[string]any{
		{"namespace": "shop", "pod": "web-1", "container_id": "3f2a9c1b7d4e", "case_id": float64(matching),
			"reason": "Terminal shell in container", "requested_by": "mockphantom playbook isolate-shell"},
		{"namespace": "shop", "pod": "web-2", "container_id": "3f2a9c1b7d4e", "case_id": float64(later),
			"reason": "Terminal shell in container", "requested_by": "mockphantom playbook isolate-shell"},
	} {
		if got[i].path != "/v1/actions/isolate" || !reflect.DeepEqual(got[i].body, want) {
			t.Errorf("request %d: %s %v, want /v1/actions/isolate %v", i+1, got[i].path, got[i].body, want)
		}
	}

	if runs := e.actionRuns(other); len(runs) != 0 {
		t.Errorf("the case of another rule has runs: %v", runs)
	}
	runs := e.actionRuns(matching)
	if len(runs) != 1 {
		t.Fatalf("matching case: %d runs, want 1: %v", len(runs), runs)
	}
	one := e.do(http.MethodGet, "/rest/action_run/"+itoa(num(runs[0]["id"])), nil, asAdmin)
	one.wantStatus(t, http.StatusOK)
	run := one.decode(t)
	start, _ := run["start_time"].(string)
	end, _ := run["end_time"].(string)
	if start == "" || end < start {
		t.Errorf("start_time %q, end_time %q; want both, in order", start, end)
	}
	delete(run, "start_time")
	delete(run, "end_time")
	var answer any
	_ = json.Unmarshal([]byte(isolatedAnswer), &answer)
	wantRun := map[string]any{"id": runs[0]["id"], "container": float64(matching), "playbook": "isolate-shell",
		"action": "isolate", "name": "isolate shop/web-1", "status": "success", "message": "pod shop/web-1 isolated",
		"answer": answer}
	if !reflect.DeepEqual(run, wantRun) {
		t.Errorf("GET /rest/action_run/N = %v, want %v", run, wantRun)
	}
	if runs := e.actionRuns(later); len(runs) != 1 || runs[0]["name"] != "isolate shop/web-2" || runs[0]["status"] != "success" {
		t.Errorf("late case: runs %v, want one success on shop/web-2", runs)
	}

	// What the web page shows of the case: the run, then the responder's note.
	acts, err := e.srv.store.Activity(t.Context(), matching)
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 2 || acts[0].Run == nil || acts[1].Note == nil || acts[1].Note.Content != "pod shop/web-1 isolated" {
		t.Errorf("activity of the case = %+v, want the run then the note", acts)
	}

	everything := logs.String() + string(e.do(http.MethodGet, "/rest/action_run?page_size=0", nil, asAdmin).body) +
		string(e.do(http.MethodGet, "/rest/note?page_size=0", nil, asAdmin).body)
	if strings.Contains(everything, responderToken) {
		t.Errorf("the responder's token shows in logs or REST answers:\n%s", everything)
	}
	if !strings.Contains(logs.String(), "playbook ran") {
		t.Errorf("no log line for the run:\n%s", logs.String())
	}
}

func withContainer(a map[string]any, cid int64) map[string]any {
	a["container_id"] = cid
	return a
}

func TestPlaybookRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	fr := newFakeResponder(t, func(n int, _ map[string]any, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			http.Error(w, `{"error": {"code": "kubernetes_error", "message": "etcd leader changed"}}`, http.StatusBadGateway)
			return
		}
		_, _ = io.WriteString(w, isolatedAnswer)
	})
	e := newPlayEnv(t, fr, isolatePlaybook, io.Discard)
	cid := e.createContainer(shellCase("c", "Terminal shell in container", "web-1"))
	e.waitPlaybooks()
	if n := len(fr.requests(t)); n != 3 {
		t.Errorf("responder got %d requests, want 3 (two failures, then success)", n)
	}
	if runs := e.actionRuns(cid); len(runs) != 1 || runs[0]["status"] != "success" || runs[0]["message"] != "pod shop/web-1 isolated" {
		t.Errorf("runs = %v, want one success with the responder's message", runs)
	}
}

func TestPlaybookFailsForGood(t *testing.T) {
	t.Parallel()
	const refusal = `{"request_id": "r-9", "error": {"code": "kubernetes_error", "message": "the API server is down"}}`
	fr := newFakeResponder(t, func(_ int, _ map[string]any, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, refusal)
	})
	var logs syncbuf.Buffer
	e := newPlayEnv(t, fr, isolatePlaybook, &logs)
	cid := e.createContainer(shellCase("c", "Terminal shell in container", "web-1"))
	e.waitPlaybooks()
	if n := len(fr.requests(t)); n != 4 {
		t.Errorf("responder got %d requests, want 4 (the retry limit)", n)
	}
	runs := e.actionRuns(cid)
	if len(runs) != 1 {
		t.Fatalf("runs = %v, want 1", runs)
	}
	want := "the responder answered 502 kubernetes_error: the API server is down (after 4 attempts)"
	if runs[0]["status"] != "failed" || runs[0]["message"] != want || runs[0]["end_time"] == nil {
		t.Errorf("run = %v, want failed, ended, with message %q", runs[0], want)
	}
	if b, _ := json.Marshal(runs[0]["answer"]); !strings.Contains(string(b), "the API server is down") {
		t.Errorf("answer kept = %s, want the responder's last answer", b)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"playbook ran\"") || strings.Contains(logs.String(), responderToken) {
		t.Errorf("logs lack the warning of the failed run, or show the token:\n%s", logs.String())
	}
}

// TestPlaybookInterruptedByClose closes the server while the responder
// has not answered: the run ends as failed, and stays so after a restart.
func TestPlaybookInterruptedByClose(t *testing.T) {
	t.Parallel()
	fr := newFakeResponder(t, func(_ int, _ map[string]any, _ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; the client gives up
	})
	db := filepath.Join(t.TempDir(), "soar.db")
	e := newTestEnv(t, Config{DBPath: db, PlaybooksFile: playbooksFile(t, fr, isolatePlaybook)})
	cid := e.createContainer(shellCase("c", "Terminal shell in container", "web-1"))
	<-fr.first
	e.http.Close()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}

	again := newTestEnv(t, Config{DBPath: db})
	runs := again.actionRuns(cid)
	if len(runs) != 1 || runs[0]["status"] != "failed" || !strings.HasPrefix(runs[0]["message"].(string), "mockphantom stopped before") {
		t.Errorf("runs after the restart = %v, want one failed because mockphantom stopped", runs)
	}
}

// TestPlaybookIgnoresOldCases: a case stored before the playbooks were
// configured is not new when it gets one more alert.
func TestPlaybookIgnoresOldCases(t *testing.T) {
	t.Parallel()
	fr := newFakeResponder(t, func(_ int, _ map[string]any, w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, isolatedAnswer)
	})
	db := filepath.Join(t.TempDir(), "soar.db")
	before := newTestEnv(t, Config{DBPath: db})
	old := before.createContainer(shellCase("c-old", "Terminal shell in container", "web-1"))
	before.http.Close()
	if err := before.srv.Close(); err != nil {
		t.Fatal(err)
	}

	e := newTestEnv(t, Config{DBPath: db, PlaybooksFile: playbooksFile(t, fr, isolatePlaybook)})
	e.do(http.MethodPost, "/rest/artifact", withContainer(shellArtifact("c-old-e3", "Terminal shell in container", "web-1"), old), asAdmin).
		wantStatus(t, http.StatusOK)
	e.waitPlaybooks()
	if n := len(fr.requests(t)); n != 0 {
		t.Errorf("an alert added to an old case made %d requests, want 0", n)
	}
	fresh := e.createContainer(shellCase("c-new", "Terminal shell in container", "web-1"))
	e.waitPlaybooks()
	if got := fr.requests(t); len(got) != 1 || got[0].body["case_id"] != float64(fresh) {
		t.Errorf("requests = %+v, want one for the new case %d", got, fresh)
	}
}

func TestPlaybooksFileIsChecked(t *testing.T) {
	t.Parallel()
	fr := newFakeResponder(t, nil)
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"unknown action", strings.Replace(isolatePlaybook, "action: isolate", "action: quarantine", 1),
			`playbook 1 (isolate-shell): action "quarantine" is unknown`},
		{"label the mock does not have", strings.Replace(isolatePlaybook, "rule: Terminal shell in container", "label: falco", 1),
			`playbook 1 (isolate-shell): match.label "falco" is not one the mock knows (events)`},
		{"unknown key", strings.Replace(isolatePlaybook, "ca_file:", "cafile:", 1),
			"playbook 1 (isolate-shell): unknown field responder.cafile"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "soar.db")
			s, err := New(t.Context(), Config{DBPath: db, InsecureNoAuth: true, PlaybooksFile: playbooksFile(t, fr, tt.yaml)})
			if err == nil {
				s.Close()
				t.Fatalf("New succeeded; want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), responderToken) {
				t.Errorf("New = %v, want an error containing %q and not the token", err, tt.want)
			}
			if _, err := os.Stat(db); !os.IsNotExist(err) {
				t.Errorf("the database was created although the playbooks were refused (stat: %v)", err)
			}
		})
	}
}

func TestPlaybookInsecureSkipVerifyWarns(t *testing.T) {
	t.Parallel()
	fr := newFakeResponder(t, func(_ int, _ map[string]any, w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, isolatedAnswer)
	})
	var logs syncbuf.Buffer
	e := newPlayEnv(t, fr, strings.Replace(isolatePlaybook, "ca_file: ca.pem", "insecure_skip_verify: true", 1), &logs)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "insecure_skip_verify") {
		t.Errorf("no warning about insecure_skip_verify at start:\n%s", logs.String())
	}
	cid := e.createContainer(shellCase("c", "Terminal shell in container", "web-1"))
	e.waitPlaybooks()
	if runs := e.actionRuns(cid); len(runs) != 1 || runs[0]["status"] != "success" {
		t.Errorf("runs = %v, want one success without verifying the certificate", runs)
	}
}

// TestReadmePlaybooks loads the example of the README, so that it stays
// valid.
func TestReadmePlaybooks(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(readme), "## Playbooks")
	_, block, _ := strings.Cut(after, "```yaml\n")
	example, _, found := strings.Cut(block, "```")
	if !found {
		t.Fatal("README.md has no yaml block under ## Playbooks")
	}
	fr := newFakeResponder(t, nil)
	path := playbooksFile(t, fr, example)
	dir := filepath.Dir(path)
	if err := os.Rename(filepath.Join(dir, "token"), filepath.Join(dir, "responder-token")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "responder-ca.crt")); err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, Config{PlaybooksFile: path})
	if got, want := e.srv.Playbooks(), []string{"isolate-shell", "label-shell"}; !reflect.DeepEqual(got, want) {
		t.Errorf("playbooks of the README = %q, want %q", got, want)
	}
}
