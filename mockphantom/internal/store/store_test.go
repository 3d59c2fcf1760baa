package store

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

func TestSchemaPragmas(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "soar.db")
	st, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checks := []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{st.w, "user_version", "2"},
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

	if _, err := Open(t.Context(), path+"?mode=ro"); err == nil || !strings.Contains(err.Error(), "'?'") {
		t.Errorf("Open with '?' in the path: err = %v, want a refusal", err)
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
	if st, err := Open(t.Context(), path); err == nil || !strings.Contains(err.Error(), "newer") {
		if st != nil {
			st.Close()
		}
		t.Fatalf("Open on a database with a newer schema: err = %v, want a refusal", err)
	}
}
