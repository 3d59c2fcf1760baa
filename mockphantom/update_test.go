package mockphantom

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestUpdateContainer(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{Labels: []string{"events", "falco"}})
	tests := []struct {
		name string
		body string
		want map[string]any // fields of GET /rest/container/N afterwards
	}{
		{"status and owner by name", `{"status": "open", "owner_id": "alice"}`,
			map[string]any{"status": "open", "owner_id": "alice"}},
		{"owner by id", `{"owner_id": 7}`, map[string]any{"owner_id": 7.0}},
		{"owner cleared with null", `{"owner_id": null}`, map[string]any{"owner_id": nil}},
		{"owner cleared with an empty name", `{"owner_id": ""}`, map[string]any{"owner_id": nil}},
		{"closed", `{"status": "closed"}`, map[string]any{"status": "closed"}},
		{"other fields", `{"severity": "high", "name": "renamed", "label": "falco", "description": "d",
			"sensitivity": "red", "tags": ["x"], "custom_fields": {"k": "v"}, "data": {"a": 1},
			"end_time": "2026-01-02T03:04:05Z", "external_id": "ext-1"}`,
			map[string]any{"severity": "high", "name": "renamed", "label": "falco", "description": "d",
				"sensitivity": "red", "tags": []any{"x"}, "custom_fields": map[string]any{"k": "v"},
				"data": map[string]any{"a": 1.0}, "end_time": "2026-01-02T03:04:05.000000Z", "external_id": "ext-1"}},
		{"end time and external id cleared", `{"end_time": "", "external_id": ""}`,
			map[string]any{"end_time": nil, "external_id": nil}},
		{"nothing", `{}`, map[string]any{"status": "new", "name": "case"}},
		{"unknown fields ignored", `{"nonsense": 1, "Status": "open"}`, map[string]any{"status": "open"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := e.createContainer(map[string]any{"name": "case", "owner_id": "bob", "end_time": "2026-01-01T00:00:00Z", "external_id": "e"})
			r := e.do(http.MethodPost, "/rest/container/"+itoa(id), tt.body, asAdmin)
			r.wantStatus(t, http.StatusOK)
			if got := r.decode(t); got["success"] != true || num(got["id"]) != id {
				t.Errorf("answer = %s, want {\"success\": true, \"id\": %d}", r.body, id)
			}
			got := e.do(http.MethodGet, "/rest/container/"+itoa(id), nil, asAdmin).decode(t)
			for k, want := range tt.want {
				if !jsonEqual(got[k], want) {
					t.Errorf("%s = %#v, want %#v", k, got[k], want)
				}
			}
		})
	}
}

func TestUpdateContainerErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	id := e.createContainer(map[string]any{"name": "case", "severity": "low"})
	path := "/rest/container/" + itoa(id)
	tests := []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"unknown status", path, `{"status": "pending"}`, 400, `status "pending" is not valid; use one of new, open, closed`},
		{"empty status", path, `{"status": ""}`, 400, "status must not be empty"},
		{"empty severity", path, `{"severity": ""}`, 400, "severity must not be empty"},
		{"unknown severity", path, `{"severity": "urgent"}`, 400, "Severity matching query does not exist."},
		{"owner not a user", path, `{"owner_id": true}`, 400, "owner_id must be an integer user id or a user name"},
		{"empty name", path, `{"name": " "}`, 400, "name must not be empty"},
		{"unknown label", path, `{"label": "nope"}`, 400, "nope is not a known label."},
		{"bad time", path, `{"start_time": "yesterday"}`, 400, "start_time \"yesterday\" is not a valid time"},
		{"tags not strings", path, `{"tags": [1]}`, 400, "tags must be a list of strings"},
		{"identifier", path, `{"source_data_identifier": "x"}`, 400, "source_data_identifier cannot be changed"},
		{"artifacts", path, `{"artifacts": []}`, 400, "POST them to /rest/artifact"},
		{"a list", path, `[{"status": "open"}]`, 400, "must be a JSON object"},
		{"not JSON", path, `{"status": `, 400, "not a valid JSON object"},
		{"unknown id", "/rest/container/999", `{"status": "open"}`, 404, "container 999 does not exist"},
		{"not an id", "/rest/container/x", `{"status": "open"}`, 404, "does not exist"},
	}
	t.Run("refused", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				e.do(http.MethodPost, tt.path, tt.body, asAdmin).wantFailure(t, tt.status, tt.msg)
			})
		}
	})
	// "refused" returns when all its parallel subtests are done.
	got := e.do(http.MethodGet, path, nil, asAdmin).decode(t)
	if got["status"] != "new" || got["severity"] != "low" || got["name"] != "case" {
		t.Errorf("refused updates changed the container: %v", got)
	}
	t.Run("token may update", func(t *testing.T) {
		e.do(http.MethodPost, path, `{}`, tokenHeader(testToken)).wantStatus(t, http.StatusOK)
	})
	t.Run("credentials needed", func(t *testing.T) {
		e.do(http.MethodPost, path, `{"status": "open"}`, noAuth).wantFailure(t, http.StatusUnauthorized, "")
	})
}

// jsonEqual compares decoded JSON values.
func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
