package mockphantom

import (
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
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

func TestSchemaPragmas(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "soar.db")
	st, err := openStore(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	checks := []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{st.w, "user_version", "1"},
		{st.w, "journal_mode", "wal"},
		{st.w, "synchronous", "1"},
		{st.w, "foreign_keys", "1"},
		{st.r, "query_only", "1"},
		{st.r, "foreign_keys", "1"},
	}
	for _, c := range checks {
		var got string
		if err := c.db.QueryRowContext(t.Context(), "PRAGMA "+c.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", c.pragma, err)
		}
		if got != c.want {
			t.Errorf("PRAGMA %s = %q, want %q", c.pragma, got, c.want)
		}
	}

	if _, err := openStore(t.Context(), path+"?mode=ro"); err == nil || !strings.Contains(err.Error(), "'?'") {
		t.Errorf("openStore with '?' in the path: err = %v, want a refusal", err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "soar.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := New(t.Context(), Config{DBPath: path, InsecureNoAuth: true}); err == nil {
		s.Close()
		t.Fatal("New on a database with a newer schema succeeded, want an error")
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	e := newTestEnv(t, Config{MaxBodyBytes: limit})
	big := `{"name": "` + strings.Repeat("x", 2*limit) + `", "label": "events"}`

	tests := []struct {
		name string
		body func() io.Reader
	}{
		{"with Content-Length", func() io.Reader { return strings.NewReader(big) }},
		// MultiReader hides the length, so the body is sent chunked and
		// only reading it finds the excess.
		{"chunked", func() io.Reader { return io.MultiReader(strings.NewReader(big)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/rest/container", tt.body())
			req.RequestURI = ""
			req.SetBasicAuth(testUser, testPassword)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			response{status: res.StatusCode, header: res.Header, body: body}.
				wantFailure(t, http.StatusRequestEntityTooLarge, "too large")
		})
	}
	e.createContainer(map[string]any{"name": strings.Repeat("y", limit/2)})
	if got := e.count("/rest/container"); got != 1 {
		t.Errorf("containers = %d, want 1 (only the small one)", got)
	}
}
