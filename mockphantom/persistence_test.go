package mockphantom

import (
	"net/http"
	"path/filepath"
	"testing"
)

// TestPersistence stores data, closes the server and opens a new one on the
// same file.
func TestPersistence(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "soar.db")
	cfg := Config{DBPath: db, InsecureNoAuth: true}

	first := newTestEnv(t, cfg)
	cid := first.createContainer(map[string]any{"name": "kept", "source_data_identifier": "k1",
		"data": map[string]any{"x": []any{1.0, "y"}}, "artifacts": []any{map[string]any{"name": "a", "source_data_identifier": "a1"}}})
	before := first.do(http.MethodGet, "/rest/container/"+itoa(cid), nil, noAuth)
	before.wantStatus(t, http.StatusOK)
	first.http.Close()
	if err := first.srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	second := newTestEnv(t, cfg)
	after := second.do(http.MethodGet, "/rest/container/"+itoa(cid), nil, noAuth)
	after.wantStatus(t, http.StatusOK)
	if string(after.body) != string(before.body) {
		t.Errorf("container after restart = %s, want %s", after.body, before.body)
	}
	second.do(http.MethodPost, "/rest/container", map[string]any{"name": "again", "label": "events", "source_data_identifier": "k1"}, noAuth).
		wantFailure(t, http.StatusOK, "duplicate with container id "+itoa(cid))
	second.do(http.MethodPost, "/rest/artifact", map[string]any{"container_id": cid, "source_data_identifier": "a1"}, noAuth).
		wantFailure(t, http.StatusOK, "artifact already exists")
	if id := second.createContainer(map[string]any{"name": "new"}); id <= cid {
		t.Errorf("new container id = %d, want more than %d", id, cid)
	}
}
