package mockphantom

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestCreateContainerWithInlineArtifacts(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	// A raw body, so that key order and number spelling of data can be
	// checked to come back verbatim.
	body := `{
		"name": "Terminal shell in container", "label": "events",
		"description": "A shell was spawned in a container", "severity": "low",
		"sensitivity": "red", "status": "open", "source_data_identifier": "falco-1",
		"start_time": "2026-11-27T01:36:43.854923360Z", "end_time": "2026-11-27T02:36:44+01:00",
		"data": {"z": 1, "a": {"n": [1, 2.50, null]}}, "tags": ["falco", "shell"],
		"owner_id": 7, "run_automation": true, "custom_fields": {"team": "blue"}, "external_id": "ext-1",
		"artifacts": [
			{"name": "event 1", "cef": {"kubernetesPodName": "web-1", "n": 3}, "source_data_identifier": "e1"},
			{"name": "bad", "severity": "critical"},
			{"name": "event 1 again", "source_data_identifier": "e1"},
			{"name": "plain", "container_id": 999, "cef_types": {"containerId": ["docker container id"]},
			 "data": [1, 2], "type": "falco", "run_automation": true, "tags": ["x"]}
		]
	}`
	r := e.do(http.MethodPost, "/rest/container", body, asAdmin)
	r.wantStatus(t, http.StatusOK)
	var created struct {
		Success   bool             `json:"success"`
		ID        int64            `json:"id"`
		Artifacts []map[string]any `json:"artifacts"`
	}
	if err := json.Unmarshal(r.body, &created); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	if !created.Success || created.ID == 0 || len(created.Artifacts) != 4 {
		t.Fatalf("answer = %s, want success, an id and 4 artifact entries", r.body)
	}
	first, last := num(created.Artifacts[0]["id"]), num(created.Artifacts[3]["id"])
	wantEntries := []map[string]any{
		{"id": float64(first)},
		{"failed": true, "message": "Severity matching query does not exist."},
		{"existing_artifact_id": float64(first)},
		{"id": float64(last)},
	}
	// Ids may have gaps, as with the real product's Postgres sequences: a
	// refused duplicate uses up an id.
	if first == 0 || last <= first || !reflect.DeepEqual(created.Artifacts, wantEntries) {
		t.Errorf("artifact entries = %v, want %v", created.Artifacts, wantEntries)
	}

	g := e.do(http.MethodGet, "/rest/container/"+itoa(created.ID), nil, asAdmin)
	g.wantStatus(t, http.StatusOK)
	for _, want := range []string{`"data":{"z":1,"a":{"n":[1,2.50,null]}}`, `"container_type":"default"`} {
		if !strings.Contains(string(g.body), want) {
			t.Errorf("GET container = %s, want it to contain %s", g.body, want)
		}
	}
	c := g.decode(t)
	wantFields := map[string]any{
		"id": float64(created.ID), "name": "Terminal shell in container", "label": "events",
		"description": "A shell was spawned in a container", "severity": "low", "sensitivity": "red",
		"status": "open", "source_data_identifier": "falco-1",
		"start_time": "2026-11-27T01:36:43.854923Z", "end_time": "2026-11-27T01:36:44.000000Z",
		"tags": []any{"falco", "shell"}, "owner_id": float64(7), "external_id": "ext-1",
		"custom_fields": map[string]any{"team": "blue"}, "artifact_count": float64(2),
	}
	for k, want := range wantFields {
		if !reflect.DeepEqual(c[k], want) {
			t.Errorf("container[%q] = %#v, want %#v", k, c[k], want)
		}
	}

	l := e.do(http.MethodGet, "/rest/container/"+itoa(created.ID)+"/artifacts", nil, asAdmin)
	l.wantStatus(t, http.StatusOK)
	var list listing[map[string]any]
	if err := json.Unmarshal(l.body, &list); err != nil {
		t.Fatalf("decode %s: %v", l.body, err)
	}
	if list.Count != 2 || len(list.Data) != 2 {
		t.Fatalf("container artifacts = %s, want 2", l.body)
	}
	a0, a1 := list.Data[0], list.Data[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"a0.container", a0["container"], float64(created.ID)},
		{"a0.label default", a0["label"], "artifact"},
		{"a0.severity default", a0["severity"], "medium"},
		{"a0.cef", a0["cef"], map[string]any{"kubernetesPodName": "web-1", "n": float64(3)}},
		{"a0.start_time default", a0["start_time"], a0["create_time"]},
		{"a0.run_automation", a0["run_automation"], false},
		{"a1.container (container_id of inline artifacts is ignored)", a1["container"], float64(created.ID)},
		{"a1.data", a1["data"], []any{float64(1), float64(2)}},
		{"a1.type", a1["type"], "falco"},
		{"a1.cef_types", a1["cef_types"], map[string]any{"containerId": []any{"docker container id"}}},
		{"a1.tags", a1["tags"], []any{"x"}},
		{"a1.run_automation", a1["run_automation"], true},
		{"a1.source_data_identifier", a1["source_data_identifier"], nil},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestContainerDefaults(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	id := e.createContainer(map[string]any{"name": "minimal"})
	c := e.do(http.MethodGet, "/rest/container/"+itoa(id), nil, asAdmin).decode(t)
	want := map[string]any{
		"severity": "medium", "sensitivity": "amber", "status": "new", "description": "",
		"data": map[string]any{}, "tags": []any{}, "custom_fields": map[string]any{},
		"source_data_identifier": nil, "end_time": nil, "owner_id": nil, "external_id": nil,
		"artifact_count": float64(0), "start_time": c["create_time"],
	}
	for k, w := range want {
		if !reflect.DeepEqual(c[k], w) {
			t.Errorf("container[%q] = %#v, want %#v", k, c[k], w)
		}
	}
	if _, ok := e.do(http.MethodPost, "/rest/container", map[string]any{"name": "x", "label": "events"}, asAdmin).decode(t)["artifacts"]; ok {
		t.Errorf("answer without inline artifacts has an artifacts key")
	}
}

func TestContainerDuplicates(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusOK, http.StatusBadRequest} {
		t.Run(fmt.Sprintf("DuplicateStatus %d", status), func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, Config{DuplicateStatus: status})
			first := e.createContainer(map[string]any{"name": "a", "source_data_identifier": "dup-1",
				"artifacts": []any{map[string]any{"name": "x"}}})

			again := map[string]any{"name": "b", "label": "events", "source_data_identifier": "dup-1",
				"artifacts": []any{map[string]any{"name": "y"}, map[string]any{"name": "z"}}}
			r := e.do(http.MethodPost, "/rest/container", again, asAdmin)
			m := r.wantFailure(t, status, fmt.Sprintf("duplicate with container id %d", first))
			if got := num(m["existing_container_id"]); got != first {
				t.Errorf("existing_container_id = %d, want %d", got, first)
			}
			if got := e.count("/rest/container"); got != 1 {
				t.Errorf("containers = %d, want 1", got)
			}
			if got := e.count("/rest/artifact"); got != 1 {
				t.Errorf("artifacts = %d, want 1 (inline artifacts of a duplicate are ignored)", got)
			}

			// Without a source_data_identifier nothing is a duplicate.
			e.createContainer(map[string]any{"name": "c"})
			e.createContainer(map[string]any{"name": "c", "source_data_identifier": ""})
			if got := e.count("/rest/container"); got != 3 {
				t.Errorf("containers = %d, want 3", got)
			}
		})
	}
}

func TestContainerValidation(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{Labels: []string{"events", "falco"}})
	tests := []struct {
		name, body, msg string
	}{
		{"not JSON", `name=x`, "JSON object"},
		{"truncated JSON", `{"name": "x", "label": "events"`, "not a valid JSON object"},
		{"empty body", ``, "JSON object"},
		{"list", `[{"name": "x", "label": "events"}]`, "JSON object"},
		{"no name", `{"label": "events"}`, "name is required"},
		{"empty name", `{"name": " ", "label": "events"}`, "name must not be empty"},
		{"name is a number", `{"name": 5, "label": "events"}`, "name must be a string"},
		{"no label", `{"name": "x"}`, "label is required"},
		{"unknown label", `{"name": "x", "label": "nope"}`, "nope is not a known label."},
		{"label is a list", `{"name": "x", "label": ["events"]}`, "label must be a string"},
		{"unknown severity", `{"name": "x", "label": "events", "severity": "critical"}`, "Severity matching query does not exist."},
		{"severity is a number", `{"name": "x", "label": "events", "severity": 3}`, "severity must be a string"},
		{"unknown status", `{"name": "x", "label": "events", "status": "pending"}`, `status "pending" is not valid`},
		{"unknown sensitivity", `{"name": "x", "label": "events", "sensitivity": "black"}`, `sensitivity "black" is not valid`},
		{"tags not a list", `{"name": "x", "label": "events", "tags": "a"}`, "tags must be a list of strings"},
		{"tags of numbers", `{"name": "x", "label": "events", "tags": [1]}`, "tags must be a list of strings"},
		{"data not an object", `{"name": "x", "label": "events", "data": []}`, "data must be a JSON object"},
		{"custom_fields not an object", `{"name": "x", "label": "events", "custom_fields": "x"}`, "custom_fields must be a JSON object"},
		{"start_time garbage", `{"name": "x", "label": "events", "start_time": "yesterday"}`, "start_time"},
		{"end_time a number", `{"name": "x", "label": "events", "end_time": 1700000000}`, "end_time must be a string"},
		{"owner_id a bool", `{"name": "x", "label": "events", "owner_id": true}`, "owner_id"},
		{"run_automation a string", `{"name": "x", "label": "events", "run_automation": "yes"}`, "run_automation must be true or false"},
		{"external_id a number", `{"name": "x", "label": "events", "external_id": 1}`, "external_id must be a string"},
		{"description an object", `{"name": "x", "label": "events", "description": {}}`, "description must be a string"},
		{"source_data_identifier a number", `{"name": "x", "label": "events", "source_data_identifier": 1}`, "source_data_identifier must be a string"},
		{"artifacts not a list", `{"name": "x", "label": "events", "artifacts": {}}`, "artifacts must be a list"},
		{"not UTF-8 in data", "{\"name\": \"x\", \"label\": \"events\", \"data\": {\"k\": \"\xff\"}}", "not valid UTF-8"},
		{"not UTF-8 in an inline artifact", "{\"name\": \"x\", \"label\": \"events\", \"artifacts\": [{\"name\": \"\xe9\"}]}", "not valid UTF-8"},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				e.do(http.MethodPost, "/rest/container", tt.body, asAdmin).wantFailure(t, http.StatusBadRequest, tt.msg)
			})
		}
	})
	if got := e.count("/rest/container"); got != 0 {
		t.Errorf("containers after only invalid posts = %d, want 0", got)
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want "" means an error
	}{
		{"2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000000Z"},
		{"2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:05.123456Z"},
		{"2026-01-02T03:04:05.123456789+02:00", "2026-01-02T01:04:05.123456Z"},
		{"2026-01-02T03:04:05", "2026-01-02T03:04:05.000000Z"},
		{"2026-01-02T03:04:05.5", "2026-01-02T03:04:05.500000Z"},
		{"2026-01-02 03:04:05", "2026-01-02T03:04:05.000000Z"},
		{"2026-01-02 03:04:05.25-01:00", "2026-01-02T04:04:05.250000Z"},
		{"2026-13-02T03:04:05Z", ""},
		{"yesterday", ""},
		{"1700000000", ""},
	}
	for _, tt := range tests {
		got, err := optTime("start_time", json.RawMessage(`"`+tt.in+`"`))
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("optTime(%q) = %q, want an error", tt.in, got)
		case tt.want != "" && (err != nil || got != tt.want):
			t.Errorf("optTime(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
