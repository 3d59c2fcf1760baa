package mockphantom

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// What playbooks and the responder do about the fixture cases, for the
// pages' activity: the real playbooks path (the engine calls a fake
// responder over HTTPS) with the fake acting like falco-phantom-responder
// (docs/respond.md): it takes its time, writes its note into the case, and
// answers. The store's clock follows the fixtures' times, so that runs and
// notes happen right after a case is opened.

// caseOpenDelay is how long after its first alert a fixture case is
// opened: the forwarder's grouping and the request.
const caseOpenDelay = 1500 * time.Millisecond

// fixtureClock is the real clock moved to the fixtures' times: set moves
// it to a time, advance jumps ahead (the time an action takes), and it
// goes on ticking from there, so that durations stay real.
type fixtureClock struct{ offset atomic.Int64 }

func (c *fixtureClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *fixtureClock) set(t time.Time) { c.offset.Store(int64(time.Until(t))) }

func (c *fixtureClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// isolateDuration is how long the fake responder takes to isolate a pod.
const isolateDuration = 32 * time.Millisecond

// Playbooks of the activity fixtures; shell cases match them.
const (
	isolateShellPlaybook = `
- name: isolate-shell
  match: {rule: Terminal shell in container}
  action: isolate
  responder: &responder {url: "%[1]s", token_file: token, ca_file: ca.pem}
`
	// terminateShellPlaybook is refused: the responder does not allow
	// terminate unless asked to (--responder-actions).
	terminateShellPlaybook = `
- name: terminate-shell
  match: {rule: Terminal shell in container}
  action: terminate
  params: {grace_period_seconds: 0}
  responder: *responder
`
)

// newActivityEnv starts a server with playbooks (yaml, see
// playbooksFile) run against a fake falco-phantom-responder, and a store
// clock that seedCases sets.
func newActivityEnv(t *testing.T, yaml string) *testEnv {
	t.Helper()
	clock := &fixtureClock{}
	var mockURL atomic.Value
	fr := newFakeResponder(t, func(n int, body map[string]any, w http.ResponseWriter, r *http.Request) {
		fixtureRespond(clock, mockURL.Load().(string), n, body, w, r)
	})
	e := newPlayEnv(t, fr, yaml, io.Discard)
	e.clock = clock
	e.srv.store.SetClock(clock.now)
	mockURL.Store(e.url)
	return e
}

// fixtureRespond does what falco-phantom-responder does with a request:
// isolate succeeds after isolateDuration, other actions are refused as
// not allowed; either way the outcome is noted into the case (with a
// note like pkg/respond's NoteOf), then answered.
func fixtureRespond(clock *fixtureClock, mockURL string, n int, body map[string]any, w http.ResponseWriter, r *http.Request) {
	str := func(k string) string { s, _ := body[k].(string); return s }
	action := path.Base(r.URL.Path)
	caseID, _ := body["case_id"].(float64)
	target := str("namespace") + "/" + str("pod")
	requestID := fmt.Sprintf("7b0e2c4a-%04d-4c1e-9a3f-5d2b8e61c0f%d", int(caseID), n%10)
	start := clock.now()
	var (
		status          = http.StatusOK
		outcome, answer string
		message         string
		took            = 2 * time.Millisecond // what the note says it took
	)
	if action == "isolate" {
		took = isolateDuration
		clock.advance(isolateDuration)
		outcome = "done"
		message = fmt.Sprintf("pod %s isolated: labelled falco-phantom.io/isolated=%d, NetworkPolicy falco-phantom-isolate denies all its traffic", target, int(caseID))
		a, _ := json.Marshal(map[string]any{"request_id": requestID, "action": action,
			"target":  map[string]any{"namespace": str("namespace"), "pod": str("pod"), "container_id": str("container_id")},
			"changed": true, "dry_run": false, "message": message, "warnings": []string{},
			"duration_ms": isolateDuration.Milliseconds(), "details": map[string]any{}})
		answer = string(a)
	} else {
		clock.advance(took)
		status, outcome = http.StatusForbidden, "refused"
		message = "action " + action + " is not allowed: the allowed actions are isolate, release, label, annotate, describe"
		a, _ := json.Marshal(map[string]any{"request_id": requestID, "error": map[string]any{"code": "action_not_allowed", "message": message}})
		answer = string(a)
	}
	var content strings.Builder
	fmt.Fprintf(&content, "**%s** of pod `%s`: **%s** in %d ms\n\n%s\n\n| | |\n|---|---|\n", action, target, outcome, took.Milliseconds(), message)
	for _, row := range [][2]string{
		{"time", start.UTC().Format(time.RFC3339Nano)},
		{"by", str("requested_by") + " via responder (system:serviceaccount:falco-phantom:falco-phantom-responder)"},
		{"reason", str("reason")},
		{"container", str("container_id")},
		{"request", requestID},
	} {
		fmt.Fprintf(&content, "| %s | %s |\n", row[0], strings.ReplaceAll(row[1], "|", `\|`))
	}
	if status != http.StatusOK {
		fmt.Fprintf(&content, "| error | action_not_allowed |\n")
	}
	note := map[string]any{"container_id": caseID, "title": fmt.Sprintf("falco-phantom %s %s: %s", action, target, outcome),
		"content": content.String(), "note_type": "general", "note_format": "markdown"}
	if ans, err := postJSON(r.Context(), mockURL+"/rest/note", note); err != nil || ans["success"] != true {
		http.Error(w, fmt.Sprintf("the note could not be written: %v %v", ans, err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

// addRun records an action run on case cid through the store, for runs
// that no playbook file could hold (hostile names); finished at once
// unless status is running.
func (e *testEnv) addRun(t *testing.T, cid int64, playbook, action, status, message string) int64 {
	t.Helper()
	id, started, err := e.srv.store.StartActionRun(t.Context(), store.NewActionRun{ContainerID: cid, Playbook: playbook, Action: action, Name: action})
	if err != nil || !started {
		t.Fatalf("StartActionRun(%d, %q) = %v, %v", cid, playbook, started, err)
	}
	if status != "running" {
		if err := e.srv.store.FinishActionRun(t.Context(), id, status, message, nil); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// addNote posts a note into case cid as a client would.
func (e *testEnv) addNote(t *testing.T, cid int64, title, content, format string) int64 {
	t.Helper()
	r := e.do(http.MethodPost, "/rest/note", map[string]any{"container_id": cid, "title": title, "content": content,
		"note_type": "general", "note_format": format}, asAdmin)
	r.wantStatus(t, http.StatusOK)
	return num(r.decode(t)["id"])
}

// Hostile activity: what anyone with a token can write into a case, and
// what a responder (or a name the store holds) could say.
const (
	hostileNoteTitle   = `<img src=x onerror="document.title='pwned';alert(10)">` + "\u202e"
	hostileNoteContent = "**<script>document.title='pwned';alert(11)</script>** `<iframe src=x>`\n\n" +
		"| <b>k</b> | v |\n|---|---|\n| <svg onload=alert(12)> | \x1b[31m \\| <i>x</i> |\n\n"
	hostileRunMessage = `<img src=y onerror=alert(13)> ` + "\u2066bidi\x07"
)

// seedHostileActivity writes a hostile note (markdown and HTML), a
// hostile run and a huge note into case cid at the clock's time.
func seedHostileActivity(t *testing.T, e *testEnv, cid int64) {
	t.Helper()
	e.addRun(t, cid, `<b>pb</b>`, `<i>act</i>`, "failed", hostileRunMessage)
	e.addNote(t, cid, hostileNoteTitle, hostileNoteContent+strings.Repeat("W", 20000), "markdown")
	e.addNote(t, cid, "html", `<img src=z onerror="alert(14)"><p style="position:fixed;inset:0">cover</p>`, "html")
}
