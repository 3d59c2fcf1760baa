package mockphantom

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// timeLayout is how SOAR writes times, and how they are stored: UTC with
// microseconds, so that text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// schemaVersion is the PRAGMA user_version this code writes and expects.
const schemaVersion = 1

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
}

// store is the SQLite storage. Writes go through one connection (SQLite
// has one writer anyway, and this avoids SQLITE_BUSY between our own
// connections); reads use a pool of read-only connections, which WAL lets
// run beside the writer.
type store struct {
	w, r  *sql.DB
	stmts [numStmts]*sql.Stmt
}

// Prepared write statements, by index into store.stmts.
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

// openStore opens the database file (creating it if needed), migrates the
// schema and prepares the write statements.
func openStore(ctx context.Context, path string) (*store, error) {
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
	st := &store{w: w}
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
			_ = st.close()
			return nil, fmt.Errorf("failed to prepare statement: %w", err)
		}
	}
	return st, nil
}

func (st *store) migrate(ctx context.Context) error {
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

func (st *store) close() error {
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

// newContainer is a validated container ready to insert. Empty strings of
// nullable columns are stored as NULL.
type newContainer struct {
	Name, Label, Severity, Sensitivity, Status, Description string
	SDI, StartTime, EndTime, ExternalID                     string
	Data, Tags, CustomFields                                string // JSON text
	OwnerID                                                 string // JSON text or ""
	RunAutomation                                           bool
}

// newArtifact is a validated artifact ready to insert.
type newArtifact struct {
	ContainerID                   int64
	Name, Label, Severity         string
	CEF, CEFTypes, Data, Tags     string // JSON text
	SDI, Type, StartTime, EndTime string
	RunAutomation                 bool
}

// writeTx is one write transaction; see store.write.
type writeTx struct {
	// ctx is for statements. It is never cancelled: the driver would
	// start a watcher goroutine per statement otherwise. Cancelling the
	// request still ends the transaction, as database/sql rolls back a
	// transaction whose context is done.
	ctx   context.Context
	tx    *sql.Tx
	st    *store
	stmts [numStmts]*sql.Stmt
	now   string
}

// write runs fn in one transaction and commits it if fn returns nil.
func (st *store) write(ctx context.Context, fn func(*writeTx) error) error {
	tx, err := st.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to begin transaction: %w", err)
	}
	wt := &writeTx{ctx: context.WithoutCancel(ctx), tx: tx, st: st, now: formatTime(time.Now())}
	if err := fn(wt); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("failed to commit: %w", err)
	}
	return nil
}

func (wt *writeTx) stmt(i int) *sql.Stmt {
	if wt.stmts[i] == nil {
		wt.stmts[i] = wt.tx.StmtContext(wt.ctx, wt.st.stmts[i])
	}
	return wt.stmts[i]
}

// insertContainer stores c and returns its id, or, when a container with
// the same source_data_identifier exists, that container's id as existing.
func (wt *writeTx) insertContainer(c newContainer) (id, existing int64, err error) {
	start := c.StartTime
	if start == "" {
		start = wt.now
	}
	res, err := wt.stmt(stmtInsertContainer).ExecContext(wt.ctx,
		c.Name, c.Label, c.Severity, c.Sensitivity, c.Status, c.Description,
		nullable(c.SDI), start, nullable(c.EndTime), wt.now, c.Data, c.Tags,
		nullable(c.OwnerID), nullable(c.ExternalID), c.CustomFields, c.RunAutomation,
	)
	if err != nil {
		return 0, 0, fmt.Errorf("failed to insert container: %w", err)
	}
	if id, inserted, err := insertedID(res); err != nil || inserted {
		return id, 0, err
	}
	if err := wt.stmt(stmtFindContainerSDI).QueryRowContext(wt.ctx, c.SDI).Scan(&existing); err != nil {
		return 0, 0, fmt.Errorf("failed to find duplicate container: %w", err)
	}
	return 0, existing, nil
}

// insertedID returns the new row's id, or inserted=false when ON CONFLICT
// DO NOTHING skipped the row.
func insertedID(res sql.Result) (id int64, inserted bool, err error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, false, fmt.Errorf("failed to read insert result: %w", err)
	}
	if n == 0 {
		return 0, false, nil
	}
	if id, err = res.LastInsertId(); err != nil {
		return 0, false, fmt.Errorf("failed to read inserted id: %w", err)
	}
	return id, true, nil
}

// containerExists reports whether container id exists.
func (wt *writeTx) containerExists(id int64) (bool, error) {
	var one int
	err := wt.stmt(stmtContainerExists).QueryRowContext(wt.ctx, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to look up container %d: %w", id, err)
	}
	return true, nil
}

// insertArtifact stores a (whose container must exist) and returns its id,
// or the id of the artifact of the same container with the same
// source_data_identifier as existing.
func (wt *writeTx) insertArtifact(a newArtifact) (id, existing int64, err error) {
	start := a.StartTime
	if start == "" {
		start = wt.now
	}
	res, err := wt.stmt(stmtInsertArtifact).ExecContext(wt.ctx,
		a.ContainerID, a.Name, a.Label, a.Severity, a.CEF, a.CEFTypes, a.Data,
		nullable(a.SDI), nullable(a.Type), a.Tags, a.RunAutomation, start, nullable(a.EndTime), wt.now,
	)
	if err != nil {
		return 0, 0, fmt.Errorf("failed to insert artifact: %w", err)
	}
	if id, inserted, err := insertedID(res); err != nil || inserted {
		return id, 0, err
	}
	if err := wt.stmt(stmtFindArtifactSDI).QueryRowContext(wt.ctx, a.ContainerID, a.SDI).Scan(&existing); err != nil {
		return 0, 0, fmt.Errorf("failed to find duplicate artifact: %w", err)
	}
	return 0, existing, nil
}

// deleteContainer deletes a container and (by cascade) its artifacts.
func (st *store) deleteContainer(ctx context.Context, id int64) (bool, error) {
	var n int64
	err := st.write(ctx, func(wt *writeTx) error {
		res, err := wt.tx.ExecContext(wt.ctx, "DELETE FROM containers WHERE id = ?", id)
		if err != nil {
			return fmt.Errorf("failed to delete container %d: %w", id, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}

// containerJSON is a container as the REST API returns it.
type containerJSON struct {
	ID                   int64           `json:"id"`
	Name                 string          `json:"name"`
	Label                string          `json:"label"`
	Severity             string          `json:"severity"`
	Sensitivity          string          `json:"sensitivity"`
	Status               string          `json:"status"`
	Description          string          `json:"description"`
	SourceDataIdentifier *string         `json:"source_data_identifier"`
	StartTime            *string         `json:"start_time"`
	EndTime              *string         `json:"end_time"`
	CreateTime           string          `json:"create_time"`
	Data                 json.RawMessage `json:"data"`
	Tags                 json.RawMessage `json:"tags"`
	OwnerID              json.RawMessage `json:"owner_id"`
	ExternalID           *string         `json:"external_id"`
	CustomFields         json.RawMessage `json:"custom_fields"`
	ArtifactCount        int64           `json:"artifact_count"`
	ContainerType        string          `json:"container_type"`
}

const containerColumns = `c.id, c.name, c.label, c.severity, c.sensitivity, c.status, c.description,
	c.source_data_identifier, c.start_time, c.end_time, c.create_time, c.data, c.tags, c.owner_id,
	c.external_id, c.custom_fields,
	(SELECT COUNT(*) FROM artifacts a WHERE a.container_id = c.id)`

func scanContainer(row interface{ Scan(...any) error }) (containerJSON, error) {
	var (
		c                         containerJSON
		sdi, start, end, ext, own sql.NullString
		data, tags, custom        string
	)
	err := row.Scan(&c.ID, &c.Name, &c.Label, &c.Severity, &c.Sensitivity, &c.Status, &c.Description,
		&sdi, &start, &end, &c.CreateTime, &data, &tags, &own, &ext, &custom, &c.ArtifactCount)
	if err != nil {
		return c, err
	}
	c.SourceDataIdentifier, c.StartTime, c.EndTime, c.ExternalID = strPtr(sdi), strPtr(start), strPtr(end), strPtr(ext)
	c.Data, c.Tags, c.CustomFields = json.RawMessage(data), json.RawMessage(tags), json.RawMessage(custom)
	if own.Valid {
		c.OwnerID = json.RawMessage(own.String)
	}
	c.ContainerType = "default"
	return c, nil
}

// artifactJSON is an artifact as the REST API returns it.
type artifactJSON struct {
	ID                   int64           `json:"id"`
	Container            int64           `json:"container"`
	Name                 string          `json:"name"`
	Label                string          `json:"label"`
	Severity             string          `json:"severity"`
	CEF                  json.RawMessage `json:"cef"`
	CEFTypes             json.RawMessage `json:"cef_types"`
	Data                 json.RawMessage `json:"data"`
	SourceDataIdentifier *string         `json:"source_data_identifier"`
	Type                 *string         `json:"type"`
	Tags                 json.RawMessage `json:"tags"`
	StartTime            *string         `json:"start_time"`
	EndTime              *string         `json:"end_time"`
	CreateTime           string          `json:"create_time"`
	RunAutomation        bool            `json:"run_automation"`
}

const artifactColumns = `a.id, a.container_id, a.name, a.label, a.severity, a.cef, a.cef_types, a.data,
	a.source_data_identifier, a.type, a.tags, a.start_time, a.end_time, a.create_time, a.run_automation`

func scanArtifact(row interface{ Scan(...any) error }) (artifactJSON, error) {
	var (
		a                      artifactJSON
		sdi, typ, start, end   sql.NullString
		cef, cefTypes, d, tags string
	)
	err := row.Scan(&a.ID, &a.Container, &a.Name, &a.Label, &a.Severity, &cef, &cefTypes, &d,
		&sdi, &typ, &tags, &start, &end, &a.CreateTime, &a.RunAutomation)
	if err != nil {
		return a, err
	}
	a.SourceDataIdentifier, a.Type, a.StartTime, a.EndTime = strPtr(sdi), strPtr(typ), strPtr(start), strPtr(end)
	a.CEF, a.CEFTypes, a.Data, a.Tags = json.RawMessage(cef), json.RawMessage(cefTypes), json.RawMessage(d), json.RawMessage(tags)
	return a, nil
}

// getContainer returns container id; found is false when it does not exist.
func (st *store) getContainer(ctx context.Context, id int64) (c containerJSON, found bool, err error) {
	row := st.r.QueryRowContext(ctx, "SELECT "+containerColumns+" FROM containers c WHERE c.id = ?", id)
	c, err = scanContainer(row)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("failed to read container %d: %w", id, err)
	}
	return c, true, nil
}

// getArtifact returns artifact id; found is false when it does not exist.
func (st *store) getArtifact(ctx context.Context, id int64) (a artifactJSON, found bool, err error) {
	row := st.r.QueryRowContext(ctx, "SELECT "+artifactColumns+" FROM artifacts a WHERE a.id = ?", id)
	a, err = scanArtifact(row)
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("failed to read artifact %d: %w", id, err)
	}
	return a, true, nil
}

// listContainers returns the total count matching q and one page of it.
func (st *store) listContainers(ctx context.Context, q listQuery) (int64, []containerJSON, error) {
	return list(ctx, st, q, "containers c", containerColumns, scanContainer)
}

// listArtifacts returns the total count matching q and one page of it.
func (st *store) listArtifacts(ctx context.Context, q listQuery) (int64, []artifactJSON, error) {
	return list(ctx, st, q, "artifacts a", artifactColumns, scanArtifact)
}

// list runs the count and the page query of q in one read transaction, so
// that both see the same snapshot. table and columns are constants of this
// package; everything from the request is in q's parameters.
func list[T any](ctx context.Context, st *store, q listQuery, table, columns string,
	scan func(interface{ Scan(...any) error }) (T, error)) (int64, []T, error) {
	tx, err := st.r.BeginTx(ctx, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("failed to begin read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	var count int64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+q.where(), q.args...).Scan(&count); err != nil {
		return 0, nil, fmt.Errorf("failed to count %s: %w", table, err)
	}
	query := "SELECT " + columns + " FROM " + table + q.where() + q.orderBy()
	args := q.args
	if q.pageSize > 0 {
		query += " LIMIT ? OFFSET ?"
		args = append(args[:len(args):len(args)], q.pageSize, q.offset())
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, nil, fmt.Errorf("failed to list %s: %w", table, err)
	}
	defer func() { _ = rows.Close() }()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return 0, nil, fmt.Errorf("failed to read %s: %w", table, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("failed to list %s: %w", table, err)
	}
	return count, out, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func strPtr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

func formatTime(t time.Time) string {
	return t.UTC().Format(timeLayout)
}
