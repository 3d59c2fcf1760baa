// Package store keeps the mock SOAR's containers, artifacts, notes and
// action runs in one SQLite file (pure Go driver, WAL mode): the schema and
// its migrations, write transactions with deduplication on
// source_data_identifier, and listings with the REST API's filters, order
// and pages.
//
// Rows come back in the shape the REST API answers with, so that the
// server encodes them as they are. Everything a request supplies reaches
// SQL as a parameter, never as SQL text.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// schemaVersion is the PRAGMA user_version this code writes and expects.
const schemaVersion = 2

// migrations[i] brings a database from user_version i to i+1.
var migrations = []string{
	`CREATE TABLE containers (
		id                     INTEGER PRIMARY KEY AUTOINCREMENT,
		name                   TEXT NOT NULL,
		label                  TEXT NOT NULL,
		severity               TEXT NOT NULL,
		sensitivity            TEXT NOT NULL,
		status                 TEXT NOT NULL,
		description            TEXT NOT NULL DEFAULT '',
		source_data_identifier TEXT,
		start_time             TEXT,
		end_time               TEXT,
		create_time            TEXT NOT NULL,
		data                   TEXT NOT NULL DEFAULT '{}',
		tags                   TEXT NOT NULL DEFAULT '[]',
		owner_id               TEXT,
		external_id            TEXT,
		custom_fields          TEXT NOT NULL DEFAULT '{}',
		run_automation         INTEGER NOT NULL DEFAULT 0
	);
	CREATE UNIQUE INDEX containers_sdi ON containers (source_data_identifier)
		WHERE source_data_identifier <> '';
	CREATE TABLE artifacts (
		id                     INTEGER PRIMARY KEY AUTOINCREMENT,
		container_id           INTEGER NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
		name                   TEXT NOT NULL DEFAULT '',
		label                  TEXT NOT NULL,
		severity               TEXT NOT NULL,
		cef                    TEXT NOT NULL DEFAULT '{}',
		cef_types              TEXT NOT NULL DEFAULT '{}',
		data                   TEXT NOT NULL DEFAULT '{}',
		source_data_identifier TEXT,
		type                   TEXT,
		tags                   TEXT NOT NULL DEFAULT '[]',
		run_automation         INTEGER NOT NULL DEFAULT 0,
		start_time             TEXT,
		end_time               TEXT,
		create_time            TEXT NOT NULL
	);
	-- One index serves both the container's artifacts and deduplication.
	-- Artifacts without an identifier have NULL there (never ''), and
	-- NULLs never conflict in a UNIQUE index.
	CREATE UNIQUE INDEX artifacts_container_sdi ON artifacts (container_id, source_data_identifier);`,

	// 2: notes, and the action runs of playbooks.
	`CREATE TABLE notes (
		id           INTEGER PRIMARY KEY AUTOINCREMENT,
		container_id INTEGER NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
		title        TEXT NOT NULL DEFAULT '',
		content      TEXT NOT NULL DEFAULT '',
		note_type    TEXT NOT NULL,
		note_format  TEXT NOT NULL,
		create_time  TEXT NOT NULL
	);
	CREATE INDEX notes_container ON notes (container_id, create_time);
	CREATE TABLE action_runs (
		id           INTEGER PRIMARY KEY AUTOINCREMENT,
		container_id INTEGER NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
		playbook     TEXT NOT NULL,
		action       TEXT NOT NULL,
		name         TEXT NOT NULL,
		status       TEXT NOT NULL CHECK (status IN ('running', 'success', 'failed')),
		message      TEXT NOT NULL DEFAULT '',
		start_time   TEXT NOT NULL,
		end_time     TEXT,
		answer       TEXT
	);
	-- A playbook runs once on a case; the index also serves the case's runs.
	CREATE UNIQUE INDEX action_runs_container_playbook ON action_runs (container_id, playbook);`,
}

// Store is the SQLite storage. Writes go through one connection (SQLite
// has one writer anyway, and this avoids SQLITE_BUSY between our own
// connections); reads use a pool of read-only connections, which WAL lets
// run beside the writer.
type Store struct {
	w, r  *sql.DB
	stmts [numStmts]*sql.Stmt
	now   func() time.Time // the clock of the times writes record
}

// Prepared write statements, by index into Store.stmts.
const (
	stmtInsertContainer = iota
	stmtFindContainerSDI
	stmtContainerExists
	stmtInsertArtifact
	stmtFindArtifactSDI
	numStmts
)

var writeStatements = [numStmts]string{
	stmtInsertContainer: `INSERT INTO containers (name, label, severity, sensitivity, status, description,
		source_data_identifier, start_time, end_time, create_time, data, tags, owner_id, external_id,
		custom_fields, run_automation)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
	stmtFindContainerSDI: `SELECT id FROM containers WHERE source_data_identifier = ?`,
	stmtContainerExists:  `SELECT 1 FROM containers WHERE id = ?`,
	stmtInsertArtifact: `INSERT INTO artifacts (container_id, name, label, severity, cef, cef_types, data,
		source_data_identifier, type, tags, run_automation, start_time, end_time, create_time)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
	stmtFindArtifactSDI: `SELECT id FROM artifacts WHERE container_id = ? AND source_data_identifier = ?`,
}

// Open opens the database file (creating it if needed), migrates the
// schema and prepares the write statements.
func Open(ctx context.Context, path string) (*Store, error) {
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("database path %q must not contain '?'", path)
	}
	pragmas := url.Values{"_pragma": {
		"busy_timeout(10000)",
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"foreign_keys(1)",
	}}
	// BEGIN IMMEDIATE takes the write lock at once, so a transaction never
	// has to upgrade from reader to writer (and fail with SQLITE_BUSY).
	w, err := sql.Open("sqlite", path+"?"+pragmas.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("failed to open database %q: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	st := &Store{w: w, now: time.Now}
	if err := st.migrate(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("failed to prepare database %q: %w", path, err)
	}

	pragmas["_pragma"] = append(pragmas["_pragma"], "query_only(1)")
	r, err := sql.Open("sqlite", path+"?"+pragmas.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("failed to open database %q for reading: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	st.r = r

	for i, q := range writeStatements {
		if st.stmts[i], err = w.PrepareContext(ctx, q); err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("failed to prepare statement: %w", err)
		}
	}
	return st, nil
}

func (st *Store) migrate(ctx context.Context) error {
	var version int
	if err := st.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("failed to read schema version: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this program's %d", version, schemaVersion)
	}
	for ; version < schemaVersion; version++ {
		tx, err := st.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("failed to begin migration: %w", err)
		}
		if _, err := tx.ExecContext(ctx, migrations[version]); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("failed to migrate schema to version %d: %w", version+1, err)
		}
		// PRAGMA takes no parameters; the value is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version+1)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("failed to set schema version %d: %w", version+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("failed to commit migration to version %d: %w", version+1, err)
		}
	}
	return nil
}

// SetClock replaces the clock of the times that writes record (create
// times, the start and end of action runs), time.Now by default: tests use
// it so that what the mock records lines up with fixed alert times. Call
// it before the Store is used; now must be safe for concurrent use.
func (st *Store) SetClock(now func() time.Time) {
	st.now = now
}

// Close closes the database. Nothing may use the Store afterwards.
func (st *Store) Close() error {
	var errs []error
	for _, s := range st.stmts {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if st.r != nil {
		errs = append(errs, st.r.Close())
	}
	errs = append(errs, st.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("failed to close database: %w", err)
	}
	return nil
}
