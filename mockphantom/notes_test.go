package mockphantom

import (
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

func TestNotes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	c1 := e.createContainer(map[string]any{"name": "one"})
	c2 := e.createContainer(map[string]any{"name": "two"})

	// What pkg/phantom.CreateNote sends, with the token as the responder
	// authenticates.
	r := e.do(http.MethodPost, "/rest/note", `{"container_id": `+itoa(c1)+`, "title": "falco-phantom: isolate",
		"content": "pod shop/web-1 **isolated**", "note_type": "general", "note_format": "markdown"}`, tokenHeader(testToken))
	r.wantStatus(t, http.StatusOK)
	created := r.decode(t)
	id := num(created["id"])
	if created["success"] != true || id == 0 || len(created) != 2 {
		t.Fatalf("answer = %s, want {\"success\": true, \"id\": N}", r.body)
	}
	before := time.Now().UTC()
	second := e.do(http.MethodPost, "/rest/note", map[string]any{"container_id": c2, "title": "<b>html</b>", "note_type": "general", "note_format": "html"}, asAdmin)
	second.wantStatus(t, http.StatusOK)
	third := e.do(http.MethodPost, "/rest/note", map[string]any{"container_id": c1, "content": "no format given", "note_type": "general"}, asAdmin)
	third.wantStatus(t, http.StatusOK)

	g := e.do(http.MethodGet, "/rest/note/"+itoa(id), nil, asAdmin)
	g.wantStatus(t, http.StatusOK)
	got := g.decode(t)
	createTime, _ := got["create_time"].(string)
	delete(got, "create_time")
	want := map[string]any{"id": float64(id), "container": float64(c1), "title": "falco-phantom: isolate",
		"content": "pod shop/web-1 **isolated**", "note_type": "general", "note_format": "markdown"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GET /rest/note/%d = %v, want %v", id, got, want)
	}
	if ct, err := time.Parse(store.TimeLayout, createTime); err != nil || ct.After(before.Add(time.Second)) || ct.Before(before.Add(-time.Minute)) {
		t.Errorf("create_time = %q (%v), want a SOAR time of now", createTime, err)
	}

	l := e.do(http.MethodGet, "/rest/note?_filter_container="+itoa(c1), nil, asAdmin)
	l.wantStatus(t, http.StatusOK)
	list := l.decode(t)
	data, _ := list["data"].([]any)
	if num(list["count"]) != 2 || len(data) != 2 {
		t.Fatalf("notes of container %d = %s, want 2", c1, l.body)
	}
	if f := data[1].(map[string]any)["note_format"]; f != "markdown" {
		t.Errorf("note without note_format has format %v, want the default markdown", f)
	}
	if n := e.count("/rest/note"); n != 3 {
		t.Errorf("all notes: count %d, want 3", n)
	}
	if n := e.count(`/rest/note?_filter_note_format="html"`); n != 1 {
		t.Errorf("html notes: count %d, want 1", n)
	}

	e.do(http.MethodGet, "/rest/note/999", nil, asAdmin).wantFailure(t, http.StatusNotFound, "note 999 does not exist")
	e.do(http.MethodGet, "/rest/note/x", nil, asAdmin).wantFailure(t, http.StatusNotFound, `note "x" does not exist`)
	e.do(http.MethodGet, "/rest/note", nil, noAuth).wantFailure(t, http.StatusUnauthorized, "Authentication failed")
	e.do(http.MethodPut, "/rest/note", `{}`, asAdmin).wantFailure(t, http.StatusMethodNotAllowed, "allowed: GET, POST")
	e.do(http.MethodGet, "/rest/note?_filter_author=1", nil, asAdmin).wantFailure(t, http.StatusBadRequest, `unknown filter field "author"`)
}

func TestNoteErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	cid := itoa(e.createContainer(map[string]any{"name": "c"}))
	for _, tt := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"not an object", `[1]`, http.StatusBadRequest, "must be a JSON object describing one note"},
		{"not JSON", `{"container_id": `, http.StatusBadRequest, "must be a JSON object describing one note"},
		{"no container", `{"note_type": "general"}`, http.StatusBadRequest, "container_id is required"},
		{"container as text", `{"container_id": "one", "note_type": "general"}`, http.StatusBadRequest, "container_id must be an integer"},
		{"zero container", `{"container_id": 0, "note_type": "general"}`, http.StatusBadRequest, "container_id must be a positive container id"},
		{"unknown container", `{"container_id": 4242, "note_type": "general"}`, http.StatusNotFound, "container 4242 does not exist"},
		{"no note_type", `{"container_id": ` + cid + `}`, http.StatusBadRequest, `note_type is required; use "general"`},
		{"task note", `{"container_id": ` + cid + `, "note_type": "task"}`, http.StatusBadRequest, `note_type "task" is not supported`},
		{"bad format", `{"container_id": ` + cid + `, "note_type": "general", "note_format": "rtf"}`, http.StatusBadRequest, `note_format "rtf" is not valid; use one of markdown, html`},
		{"title not a string", `{"container_id": ` + cid + `, "note_type": "general", "title": 3}`, http.StatusBadRequest, "title must be a string"},
		{"content not a string", `{"container_id": ` + cid + `, "note_type": "general", "content": {}}`, http.StatusBadRequest, "content must be a string"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.do(http.MethodPost, "/rest/note", tt.body, asAdmin).wantFailure(t, tt.status, tt.want)
		})
	}
	if n := e.count("/rest/note"); n != 0 {
		t.Errorf("%d notes stored by refused requests, want 0", n)
	}
}

func TestNotesPersist(t *testing.T) {
	t.Parallel()
	cfg := Config{DBPath: filepath.Join(t.TempDir(), "soar.db"), InsecureNoAuth: true}
	first := newTestEnv(t, cfg)
	cid := first.createContainer(map[string]any{"name": "kept"})
	r := first.do(http.MethodPost, "/rest/note", map[string]any{"container_id": cid, "title": "t", "content": "kept across restarts", "note_type": "general"}, noAuth)
	r.wantStatus(t, http.StatusOK)
	id := num(r.decode(t)["id"])
	before := first.do(http.MethodGet, "/rest/note/"+itoa(id), nil, noAuth)
	first.http.Close()
	if err := first.srv.Close(); err != nil {
		t.Fatal(err)
	}

	second := newTestEnv(t, cfg)
	after := second.do(http.MethodGet, "/rest/note/"+itoa(id), nil, noAuth)
	after.wantStatus(t, http.StatusOK)
	if string(after.body) != string(before.body) || !strings.Contains(string(after.body), "kept across restarts") {
		t.Errorf("note after restart = %s, want %s", after.body, before.body)
	}
}
