package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// NewContainer is a validated container ready to insert. Empty strings of
// nullable columns are stored as NULL; times are in TimeLayout, and an
// empty StartTime means the time of the insert.
type NewContainer struct {
	Name, Label, Severity, Sensitivity, Status, Description string
	SDI, StartTime, EndTime, ExternalID                     string
	Data, Tags, CustomFields                                string // JSON text
	OwnerID                                                 string // JSON text or ""
	RunAutomation                                           bool
}

// NewArtifact is a validated artifact ready to insert; see NewContainer.
type NewArtifact struct {
	ContainerID                   int64
	Name, Label, Severity         string
	CEF, CEFTypes, Data, Tags     string // JSON text
	SDI, Type, StartTime, EndTime string
	RunAutomation                 bool
}

// Tx is one write transaction; see Store.Write.
type Tx struct {
	// ctx is for statements. It is never cancelled: the driver would
	// start a watcher goroutine per statement otherwise. Cancelling the
	// request still ends the transaction, as database/sql rolls back a
	// transaction whose context is done.
	ctx   context.Context
	tx    *sql.Tx
	st    *Store
	stmts [numStmts]*sql.Stmt
	now   string
}

// Write runs fn in one transaction and commits it if fn returns nil; an
// error of fn rolls it back and is returned as it is.
func (st *Store) Write(ctx context.Context, fn func(*Tx) error) error {
	tx, err := st.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to begin transaction: %w", err)
	}
	wt := &Tx{ctx: context.WithoutCancel(ctx), tx: tx, st: st, now: FormatTime(st.now())}
	if err := fn(wt); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("failed to commit: %w", err)
	}
	return nil
}

func (wt *Tx) stmt(i int) *sql.Stmt {
	if wt.stmts[i] == nil {
		wt.stmts[i] = wt.tx.StmtContext(wt.ctx, wt.st.stmts[i])
	}
	return wt.stmts[i]
}

// InsertContainer stores c and returns its id, or, when a container with
// the same source_data_identifier exists, that container's id as existing.
func (wt *Tx) InsertContainer(c NewContainer) (id, existing int64, err error) {
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

// ContainerExists reports whether container id exists.
func (wt *Tx) ContainerExists(id int64) (bool, error) {
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

// InsertArtifact stores a (whose container must exist) and returns its id,
// or the id of the artifact of the same container with the same
// source_data_identifier as existing.
func (wt *Tx) InsertArtifact(a NewArtifact) (id, existing int64, err error) {
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

// DeleteContainer deletes a container and (by cascade) its artifacts; it
// reports whether the container existed.
func (st *Store) DeleteContainer(ctx context.Context, id int64) (bool, error) {
	var n int64
	err := st.Write(ctx, func(wt *Tx) error {
		res, err := wt.tx.ExecContext(wt.ctx, "DELETE FROM containers WHERE id = ?", id)
		if err != nil {
			return fmt.Errorf("failed to delete container %d: %w", id, err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}

// ContainerUpdate changes some fields of a container; nil fields stay as
// they are. Values are validated like NewContainer's. An empty OwnerID,
// EndTime or ExternalID clears it (stores NULL).
type ContainerUpdate struct {
	Name, Label, Severity, Sensitivity, Status, Description *string
	StartTime, EndTime, OwnerID, ExternalID                 *string
	Data, Tags, CustomFields                                *string // JSON text
	RunAutomation                                           *bool
}

// UpdateContainer applies u to container id and reports whether the
// container exists. An update without fields changes nothing.
func (st *Store) UpdateContainer(ctx context.Context, id int64, u ContainerUpdate) (found bool, err error) {
	// Column names are constants; only the values are parameters.
	var sets []string
	var args []any
	for _, f := range []struct {
		column string
		value  *string
		null   bool // "" stores NULL
	}{
		{"name", u.Name, false}, {"label", u.Label, false}, {"severity", u.Severity, false},
		{"sensitivity", u.Sensitivity, false}, {"status", u.Status, false},
		{"description", u.Description, false}, {"start_time", u.StartTime, false},
		{"end_time", u.EndTime, true}, {"owner_id", u.OwnerID, true}, {"external_id", u.ExternalID, true},
		{"data", u.Data, false}, {"tags", u.Tags, false}, {"custom_fields", u.CustomFields, false},
	} {
		if f.value == nil {
			continue
		}
		sets = append(sets, f.column+" = ?")
		if f.null {
			args = append(args, nullable(*f.value))
		} else {
			args = append(args, *f.value)
		}
	}
	if u.RunAutomation != nil {
		sets = append(sets, "run_automation = ?")
		args = append(args, *u.RunAutomation)
	}
	err = st.Write(ctx, func(wt *Tx) error {
		if len(sets) == 0 {
			found, err = wt.ContainerExists(id)
			return err
		}
		res, err := wt.tx.ExecContext(wt.ctx, "UPDATE containers SET "+strings.Join(sets, ", ")+" WHERE id = ?",
			append(args, id)...)
		if err != nil {
			return fmt.Errorf("failed to update container %d: %w", id, err)
		}
		n, err := res.RowsAffected()
		found = n > 0
		return err
	})
	return found, err
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
