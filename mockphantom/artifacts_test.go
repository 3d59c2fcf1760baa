package mockphantom

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestCreateArtifactSingle(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	cid := e.createContainer(map[string]any{"name": "c"})
	art := map[string]any{
		"container_id": cid, "name": "shell", "label": "falco", "severity": "high",
		"cef":  map[string]any{"commandLine": "sh -c id", "kubernetesPodName": "web-1"},
		"data": map[string]any{"rule": "Terminal shell in container"}, "source_data_identifier": "ev-1",
		"start_time": "2026-11-27T01:36:43.854923360Z", "end_time": "2026-11-27T01:36:44Z",
		"run_automation": true, "type": "falco", "tags": []string{"a"},
	}
	r := e.do(http.MethodPost, "/rest/artifact", art, asAdmin)
	r.wantStatus(t, http.StatusOK)
	m := r.decode(t)
	id := num(m["id"])
	if m["success"] != true || id == 0 {
		t.Fatalf("answer = %s, want success and an id", r.body)
	}

	g := e.do(http.MethodGet, "/rest/artifact/"+itoa(id), nil, asAdmin)
	g.wantStatus(t, http.StatusOK)
	got := g.decode(t)
	want := map[string]any{
		"id": float64(id), "container": float64(cid), "name": "shell", "label": "falco", "severity": "high",
		"cef":  map[string]any{"commandLine": "sh -c id", "kubernetesPodName": "web-1"},
		"data": map[string]any{"rule": "Terminal shell in container"}, "source_data_identifier": "ev-1",
		"start_time": "2026-11-27T01:36:43.854923Z", "end_time": "2026-11-27T01:36:44.000000Z",
		"run_automation": true, "type": "falco", "tags": []any{"a"}, "cef_types": map[string]any{},
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("artifact[%q] = %#v, want %#v", k, got[k], w)
		}
	}
	if _, ok := got["create_time"].(string); !ok {
		t.Errorf("artifact has no create_time: %s", g.body)
	}
}

func TestArtifactDuplicates(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusOK, http.StatusBadRequest} {
		t.Run(fmt.Sprintf("DuplicateStatus %d", status), func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, Config{DuplicateStatus: status})
			c1 := e.createContainer(map[string]any{"name": "c1"})
			c2 := e.createContainer(map[string]any{"name": "c2"})

			first := e.do(http.MethodPost, "/rest/artifact", map[string]any{"container_id": c1, "source_data_identifier": "s"}, asAdmin)
			first.wantStatus(t, http.StatusOK)
			id := num(first.decode(t)["id"])

			// single object
			dup := e.do(http.MethodPost, "/rest/artifact", map[string]any{"container_id": c1, "source_data_identifier": "s"}, asAdmin)
			m := dup.wantFailure(t, status, "artifact already exists")
			if got := num(m["existing_artifact_id"]); got != id {
				t.Errorf("existing_artifact_id = %d, want %d", got, id)
			}

			// list: the same identifier in another container is no
			// duplicate; one twice in the list is.
			list := []any{
				map[string]any{"container_id": c1, "source_data_identifier": "s"},
				map[string]any{"container_id": c2, "source_data_identifier": "s"},
				map[string]any{"container_id": c1, "source_data_identifier": "t"},
				map[string]any{"container_id": c1, "source_data_identifier": "t"},
			}
			r := e.do(http.MethodPost, "/rest/artifact", list, asAdmin)
			r.wantStatus(t, http.StatusOK) // a list is always 200
			got := r.decodeList(t)
			if len(got) != 4 {
				t.Fatalf("list answer = %s, want 4 entries", r.body)
			}
			if got[0]["failed"] != true || num(got[0]["existing_artifact_id"]) != id || got[0]["message"] != "artifact already exists" {
				t.Errorf("entry 0 = %v, want a duplicate of %d", got[0], id)
			}
			if got[1]["success"] != true || got[2]["success"] != true {
				t.Errorf("entries 1 and 2 = %v, %v; want success", got[1], got[2])
			}
			if num(got[3]["existing_artifact_id"]) != num(got[2]["id"]) {
				t.Errorf("entry 3 = %v, want a duplicate of entry 2 %v", got[3], got[2])
			}
			if n := e.count("/rest/artifact"); n != 3 {
				t.Errorf("artifacts = %d, want 3", n)
			}
		})
	}
}

func TestArtifactErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	cid := e.createContainer(map[string]any{"name": "c"})
	c := itoa(cid)
	tests := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"missing container", `{"container_id": 424242}`, http.StatusNotFound, "container 424242 does not exist"},
		{"no container_id", `{"name": "x"}`, http.StatusBadRequest, "container_id is required"},
		{"container_id a string", `{"container_id": "1"}`, http.StatusBadRequest, "container_id must be an integer"},
		{"container_id a fraction", `{"container_id": 1.5}`, http.StatusBadRequest, "container_id must be an integer"},
		{"unknown severity", `{"container_id": ` + c + `, "severity": "urgent"}`, http.StatusBadRequest, "Severity matching query does not exist."},
		{"cef not an object", `{"container_id": ` + c + `, "cef": "x"}`, http.StatusBadRequest, "cef must be a JSON object"},
		{"cef_types wrong shape", `{"container_id": ` + c + `, "cef_types": {"k": "ip"}}`, http.StatusBadRequest, "cef_types"},
		{"tags not a list", `{"container_id": ` + c + `, "tags": {}}`, http.StatusBadRequest, "tags must be a list of strings"},
		{"name a number", `{"container_id": ` + c + `, "name": 1}`, http.StatusBadRequest, "name must be a string"},
		{"bad start_time", `{"container_id": ` + c + `, "start_time": "soon"}`, http.StatusBadRequest, "start_time"},
		{"run_automation a number", `{"container_id": ` + c + `, "run_automation": 1}`, http.StatusBadRequest, "run_automation"},
		{"not JSON", `container_id=1`, http.StatusBadRequest, "JSON artifact object or a list"},
		{"broken list", `[{"container_id": 1},`, http.StatusBadRequest, "not a valid JSON list"},
		{"a number", `42`, http.StatusBadRequest, "JSON artifact object or a list"},
		// encoding/json accepts bytes that are not UTF-8 inside strings; a
		// strict parser, as SOAR's, does not.
		{"not UTF-8 in data", "{\"container_id\": " + c + ", \"data\": {\"cmd\": \"sh \xff\"}}", http.StatusBadRequest, "not valid UTF-8"},
		{"not UTF-8 in a list", "[{\"container_id\": " + c + ", \"name\": \"\xc3\"}]", http.StatusBadRequest, "not valid UTF-8"},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				e.do(http.MethodPost, "/rest/artifact", tt.body, asAdmin).wantFailure(t, tt.status, tt.msg)
			})
		}
	})
	if n := e.count("/rest/artifact"); n != 0 {
		t.Errorf("artifacts after only failed posts = %d, want 0", n)
	}

	// In a list every item stands on its own.
	list := `[{"container_id": ` + c + `, "name": "ok"}, {"container_id": 424242}, {"container_id": ` + c + `, "severity": "urgent"}, 7, {"container_id": ` + c + `, "name": "ok too"}]`
	r := e.do(http.MethodPost, "/rest/artifact", list, asAdmin)
	r.wantStatus(t, http.StatusOK)
	got := r.decodeList(t)
	wantFailed := []bool{false, true, true, true, false}
	wantMsg := []string{"", "container 424242 does not exist", "Severity matching query does not exist.", "must be a JSON object", ""}
	if len(got) != len(wantFailed) {
		t.Fatalf("list answer = %s, want %d entries", r.body, len(wantFailed))
	}
	for i := range got {
		failed := got[i]["failed"] == true
		msg, _ := got[i]["message"].(string)
		if failed != wantFailed[i] || !strings.Contains(msg, wantMsg[i]) || (!failed && got[i]["success"] != true) {
			t.Errorf("entry %d = %v, want failed=%v with message %q", i, got[i], wantFailed[i], wantMsg[i])
		}
	}
	if n := e.count("/rest/artifact"); n != 2 {
		t.Errorf("artifacts = %d, want 2", n)
	}
}

// TestConcurrentDuplicates posts the same source_data_identifier from 20
// goroutines at once: exactly one object may be created, and every other
// answer must point at it.
func TestConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	const n = 20
	e := newTestEnv(t, Config{})
	cid := e.createContainer(map[string]any{"name": "holder"})

	tests := []struct {
		name, path string
		body       any
		idKey      string // key of the created id
		dupKey     string // key of the existing id in a duplicate answer
		count      string
	}{
		{"container", "/rest/container", map[string]any{"name": "c", "label": "events", "source_data_identifier": "same"},
			"id", "existing_container_id", "/rest/container?_filter_source_data_identifier=%22same%22"},
		{"artifact", "/rest/artifact", map[string]any{"container_id": cid, "source_data_identifier": "same"},
			"id", "existing_artifact_id", "/rest/artifact?_filter_source_data_identifier=%22same%22"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			answers := make([]map[string]any, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					answers[i], errs[i] = postJSON(t.Context(), e.url+tt.path, tt.body)
				})
			}
			close(start)
			wg.Wait()

			created, ids := 0, map[int64]bool{}
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("request %d: %v", i, errs[i])
				}
				if answers[i]["success"] == true {
					created++
					ids[num(answers[i][tt.idKey])] = true
				} else {
					ids[num(answers[i][tt.dupKey])] = true
				}
			}
			if created != 1 || len(ids) != 1 {
				t.Errorf("created = %d with distinct ids %v, want 1 created and all answers naming it", created, ids)
			}
			if got := e.count(tt.count); got != 1 {
				t.Errorf("stored = %d, want 1", got)
			}
		})
	}
}
