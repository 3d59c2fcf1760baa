package store

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestNotesAndActionRuns(t *testing.T) {
	t.Parallel()
	st := newTestStore(t)
	ctx := t.Context()

	if _, found, err := st.AddNote(ctx, NewNote{ContainerID: 99, NoteType: "general", NoteFormat: "markdown"}); err != nil || found {
		t.Errorf("AddNote to container 99 = found %v, %v; want not found", found, err)
	}
	runID, started, err := st.StartActionRun(ctx, NewActionRun{ContainerID: 1, Playbook: "isolate-shell", Action: "isolate", Name: "isolate shop/web-1"})
	if err != nil || !started {
		t.Fatalf("StartActionRun = %d, %v, %v", runID, started, err)
	}
	if _, again, err := st.StartActionRun(ctx, NewActionRun{ContainerID: 1, Playbook: "isolate-shell", Action: "isolate", Name: "x"}); err != nil || again {
		t.Errorf("a second start of the same playbook on the same case = started %v, %v; want refused", again, err)
	}
	if _, other, err := st.StartActionRun(ctx, NewActionRun{ContainerID: 2, Playbook: "isolate-shell", Action: "isolate", Name: "y"}); err != nil || !other {
		t.Errorf("the playbook on another case = started %v, %v; want started", other, err)
	}
	run, found, err := st.ActionRun(ctx, runID)
	if err != nil || !found || run.Status != RunRunning || run.EndTime != nil || run.Answer != nil {
		t.Errorf("ActionRun while running = %+v, %v, %v; want running without end time or answer", run, found, err)
	}
	noteID, found, err := st.AddNote(ctx, NewNote{ContainerID: 1, Title: "isolated", Content: "**done**", NoteType: "general", NoteFormat: "markdown"})
	if err != nil || !found {
		t.Fatalf("AddNote = %v, %v", found, err)
	}
	answer := json.RawMessage(`{"changed": true}`)
	if err := st.FinishActionRun(ctx, runID, RunSuccess, "pod isolated", answer); err != nil {
		t.Fatalf("FinishActionRun: %v", err)
	}
	if err := st.FinishActionRun(ctx, runID, RunRunning, "", nil); err == nil {
		t.Error("FinishActionRun with status running succeeded")
	}
	if err := st.FinishActionRun(ctx, runID, RunFailed, "", json.RawMessage("{not json")); err == nil {
		t.Error("FinishActionRun with an invalid answer succeeded")
	}
	run, _, _ = st.ActionRun(ctx, runID)
	if run.Status != RunSuccess || run.Message != "pod isolated" || string(run.Answer) != string(answer) ||
		run.EndTime == nil || *run.EndTime < run.StartTime || run.Container != 1 || run.Playbook != "isolate-shell" {
		t.Errorf("ActionRun after finishing = %+v", run)
	}

	acts, err := st.Activity(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 2 || acts[0].Run == nil || acts[0].Run.ID != runID || acts[1].Note == nil || acts[1].Note.ID != noteID ||
		acts[0].Time != acts[0].Run.StartTime || acts[1].Time != acts[1].Note.CreateTime {
		t.Errorf("Activity(1) = %+v, want the run, then the note", acts)
	}
	if acts, err := st.Activity(ctx, 99); err != nil || len(acts) != 0 {
		t.Errorf("Activity(99) = %+v, %v; want none", acts, err)
	}

	n, err := st.FailRunningActionRuns(ctx, "interrupted")
	if err != nil || n != 1 {
		t.Errorf("FailRunningActionRuns = %d, %v; want the one run of container 2", n, err)
	}
	_, runs, err := st.ListActionRuns(ctx, Query{Container: 2})
	if err != nil || len(runs) != 1 || runs[0].Status != RunFailed || runs[0].Message != "interrupted" || runs[0].EndTime == nil {
		t.Errorf("runs of container 2 = %+v, %v; want one failed as interrupted", runs, err)
	}

	if _, err := st.DeleteContainer(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := st.Note(ctx, noteID); found {
		t.Error("the note outlived its container")
	}
	if _, found, _ := st.ActionRun(ctx, runID); found {
		t.Error("the action run outlived its container")
	}
}

// TestActivityOrder interleaves notes and runs.
func TestActivityOrder(t *testing.T) {
	t.Parallel()
	st := newTestStore(t)
	ctx := t.Context()
	var want []string
	last := ""
	for i, kind := range []string{"note", "run", "note", "note", "run"} {
		// Each write in a microsecond of its own, after the one the last
		// write ended in (times are stored to the microsecond, and equal
		// ones put the run first).
		for FormatTime(time.Now()) == last {
			runtime.Gosched()
		}
		switch kind {
		case "note":
			if _, _, err := st.AddNote(ctx, NewNote{ContainerID: 2, Title: string(rune('a' + i)), NoteType: "general", NoteFormat: "html"}); err != nil {
				t.Fatal(err)
			}
		case "run":
			if _, _, err := st.StartActionRun(ctx, NewActionRun{ContainerID: 2, Playbook: string(rune('a' + i)), Action: "describe"}); err != nil {
				t.Fatal(err)
			}
		}
		last = FormatTime(time.Now())
		want = append(want, kind+" "+string(rune('a'+i)))
	}
	acts, err := st.Activity(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range acts {
		if a.Note != nil {
			got = append(got, "note "+a.Note.Title)
		} else {
			got = append(got, "run "+a.Run.Playbook)
		}
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("Activity = %v, want %v", got, want)
	}
}

// TestMigrationFromVersion1 opens a database written by the previous
// schema and finds its cases, with notes and runs now possible.
func TestMigrationFromVersion1(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "soar.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0], "PRAGMA user_version = 1",
		`INSERT INTO containers (name, label, severity, sensitivity, status, create_time) VALUES ('old', 'events', 'low', 'amber', 'new', '2026-01-01T00:00:00.000000Z')`} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	st, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open on a version 1 database: %v", err)
	}
	defer st.Close()
	c, found, err := st.Container(t.Context(), 1)
	if err != nil || !found || c.Name != "old" {
		t.Errorf("container 1 after migrating = %+v, %v, %v", c, found, err)
	}
	if _, found, err := st.AddNote(t.Context(), NewNote{ContainerID: 1, NoteType: "general", NoteFormat: "markdown"}); err != nil || !found {
		t.Errorf("AddNote after migrating = %v, %v", found, err)
	}
}

// TestRunStatesAndClock reads the runs of several containers at once, with
// times from the store's clock.
func TestRunStatesAndClock(t *testing.T) {
	t.Parallel()
	st := newTestStore(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 30, 9, 0, 1, 0, time.UTC)
	st.SetClock(func() time.Time { return at })
	for _, r := range []NewActionRun{
		{ContainerID: 2, Playbook: "label-shell", Action: "label"},
		{ContainerID: 1, Playbook: "isolate-shell", Action: "isolate"},
		{ContainerID: 2, Playbook: "isolate-shell", Action: "isolate"},
	} {
		id, _, err := st.StartActionRun(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		at = at.Add(40 * time.Millisecond)
		if r.ContainerID == 2 && r.Action == "isolate" {
			if err := st.FinishActionRun(ctx, id, RunFailed, "refused", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := st.RunStates(ctx, []int64{1, 2, 99})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64][]RunState{
		1: {{"isolate-shell", "isolate", RunRunning}},
		2: {{"label-shell", "label", RunRunning}, {"isolate-shell", "isolate", RunFailed}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RunStates = %v, want %v", got, want)
	}
	if none, err := st.RunStates(ctx, nil); err != nil || len(none) != 0 {
		t.Errorf("RunStates(nil) = %v, %v; want none", none, err)
	}
	_, runs, err := st.ListActionRuns(ctx, Query{Container: 2, Sort: "start_time"})
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs of container 2 = %v, %v", runs, err)
	}
	if runs[0].StartTime != "2026-11-30T09:00:01.000000Z" || runs[1].StartTime != "2026-11-30T09:00:01.080000Z" ||
		runs[1].EndTime == nil || *runs[1].EndTime != "2026-11-30T09:00:01.120000Z" {
		t.Errorf("times of the runs = %s, %s to %v; want those of the clock", runs[0].StartTime, runs[1].StartTime, runs[1].EndTime)
	}
}
