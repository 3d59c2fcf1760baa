package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// Statuses of an action run.
const (
	// RunRunning: the action was sent and has no outcome yet.
	RunRunning = "running"
	// RunSuccess: the responder did the action (or found it done).
	RunSuccess = "success"
	// RunFailed: the responder refused or failed, or could not be reached.
	RunFailed = "failed"
)

// NewActionRun is an action a playbook starts on a case.
type NewActionRun struct {
	ContainerID            int64
	Playbook, Action, Name string
}

// ActionRun is an action run as the REST API returns it. EndTime is null
// and Answer is null while it runs; Answer stays null when the responder
// never answered.
type ActionRun struct {
	ID        int64           `json:"id"`
	Container int64           `json:"container"`
	Playbook  string          `json:"playbook"`
	Action    string          `json:"action"`
	Name      string          `json:"name"`
	Status    string          `json:"status"`
	Message   string          `json:"message"`
	StartTime string          `json:"start_time"`
	EndTime   *string         `json:"end_time"`
	Answer    json.RawMessage `json:"answer"`
}

const actionRunColumns = `r.id, r.container_id, r.playbook, r.action, r.name, r.status, r.message,
	r.start_time, r.end_time, r.answer`

func scanActionRun(row interface{ Scan(...any) error }) (ActionRun, error) {
	var (
		r           ActionRun
		end, answer sql.NullString
	)
	err := row.Scan(&r.ID, &r.Container, &r.Playbook, &r.Action, &r.Name, &r.Status, &r.Message,
		&r.StartTime, &end, &answer)
	if err != nil {
		return r, err
	}
	r.EndTime = strPtr(end)
	if answer.Valid {
		r.Answer = json.RawMessage(answer.String)
	}
	return r, nil
}

// StartActionRun records r as running since now and returns its id.
// started is false, and nothing is recorded, when the playbook already
// has a run on that container: a playbook runs once per case.
func (st *Store) StartActionRun(ctx context.Context, r NewActionRun) (id int64, started bool, err error) {
	err = st.Write(ctx, func(wt *Tx) error {
		res, err := wt.tx.ExecContext(wt.ctx, `INSERT INTO action_runs (container_id, playbook, action, name, status, start_time)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			r.ContainerID, r.Playbook, r.Action, r.Name, RunRunning, wt.now)
		if err != nil {
			return fmt.Errorf("failed to record the start of playbook %q on container %d: %w", r.Playbook, r.ContainerID, err)
		}
		id, started, err = insertedID(res)
		return err
	})
	return id, started, err
}

// FinishActionRun sets the outcome of run id: its status (RunSuccess or
// RunFailed), message, the responder's answer (valid JSON, or nil for
// none) and an end time of now. A run that no longer exists (its container
// was deleted) is no error.
func (st *Store) FinishActionRun(ctx context.Context, id int64, status, message string, answer json.RawMessage) error {
	if status != RunSuccess && status != RunFailed {
		return fmt.Errorf("action run %d cannot finish with status %q", id, status)
	}
	if answer != nil && !json.Valid(answer) {
		return fmt.Errorf("the answer of action run %d is not valid JSON", id)
	}
	return st.Write(ctx, func(wt *Tx) error {
		_, err := wt.tx.ExecContext(wt.ctx, `UPDATE action_runs SET status = ?, message = ?, answer = ?, end_time = ?
			WHERE id = ?`, status, message, nullable(string(answer)), wt.now, id)
		if err != nil {
			return fmt.Errorf("failed to record the outcome of action run %d: %w", id, err)
		}
		return nil
	})
}

// FailRunningActionRuns marks every run still running as failed with
// message and returns how many there were: runs that a stopped process
// left behind.
func (st *Store) FailRunningActionRuns(ctx context.Context, message string) (int64, error) {
	var n int64
	err := st.Write(ctx, func(wt *Tx) error {
		res, err := wt.tx.ExecContext(wt.ctx, `UPDATE action_runs SET status = ?, message = ?, end_time = ?
			WHERE status = ?`, RunFailed, message, wt.now, RunRunning)
		if err != nil {
			return fmt.Errorf("failed to close interrupted action runs: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// ActionRun returns action run id; found is false when it does not exist.
func (st *Store) ActionRun(ctx context.Context, id int64) (r ActionRun, found bool, err error) {
	row := st.r.QueryRowContext(ctx, "SELECT "+actionRunColumns+" FROM action_runs r WHERE r.id = ?", id)
	r, err = scanActionRun(row)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("failed to read action run %d: %w", id, err)
	}
	return r, true, nil
}

// ListActionRuns returns how many action runs match q and one page of them.
func (st *Store) ListActionRuns(ctx context.Context, q Query) (int64, []ActionRun, error) {
	return list(ctx, st, q, ActionRuns, actionRunColumns, scanActionRun)
}
