package store

import (
	"context"
	"fmt"
	"strings"
)

// Activity is one entry of what was done about a case: exactly one of
// Note and Run is set.
type Activity struct {
	// Time is the note's create_time or the run's start_time (TimeLayout).
	Time string
	Note *Note
	Run  *ActionRun
}

// Activity returns the notes and action runs of container id in time
// order, oldest first; a run comes before a note written in the same
// microsecond (the responder notes what it did after the run started). A
// container without any, or one that does not exist, has none.
func (st *Store) Activity(ctx context.Context, id int64) ([]Activity, error) {
	_, notes, err := st.ListNotes(ctx, Query{Container: id, Sort: "create_time"})
	if err != nil {
		return nil, fmt.Errorf("failed to read the activity of container %d: %w", id, err)
	}
	_, runs, err := st.ListActionRuns(ctx, Query{Container: id, Sort: "start_time"})
	if err != nil {
		return nil, fmt.Errorf("failed to read the activity of container %d: %w", id, err)
	}
	out := make([]Activity, 0, len(notes)+len(runs))
	for len(notes) > 0 || len(runs) > 0 {
		if len(runs) > 0 && (len(notes) == 0 || runs[0].StartTime <= notes[0].CreateTime) {
			out = append(out, Activity{Time: runs[0].StartTime, Run: &runs[0]})
			runs = runs[1:]
			continue
		}
		out = append(out, Activity{Time: notes[0].CreateTime, Note: &notes[0]})
		notes = notes[1:]
	}
	return out, nil
}

// RunState is what the list of cases shows of one action run.
type RunState struct {
	Playbook, Action, Status string
}

// RunStates returns the action runs of the containers ids, each
// container's in the order they started, in one query: the list of cases
// reads them for a whole page at once. Containers without runs are
// absent from the map.
func (st *Store) RunStates(ctx context.Context, ids []int64) (map[int64][]RunState, error) {
	out := map[int64][]RunState{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := st.r.QueryContext(ctx, `SELECT container_id, playbook, action, status FROM action_runs
		WHERE container_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY container_id, start_time, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to read the action runs of %d containers: %w", len(ids), err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			id int64
			r  RunState
		)
		if err := rows.Scan(&id, &r.Playbook, &r.Action, &r.Status); err != nil {
			return nil, fmt.Errorf("failed to read action runs: %w", err)
		}
		out[id] = append(out[id], r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the action runs of %d containers: %w", len(ids), err)
	}
	return out, nil
}
