package mockphantom

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// What was done about a case, as its page shows it: the action runs of
// playbooks and the notes (the responder's among them), in time order, in
// the Activity section and in lanes of their own on the timeline.

// Page model of a case's activity. Every string is already cut and
// cleaned by clip; html/template escapes them on output.
type (
	activityRow struct {
		Anchor string // "run-3", "note-7": where the timeline's marks lead
		Time   pageTime
		Kind   string // "action" or "note"
		Run    *runView
		Note   *noteView
	}
	runView struct {
		Action, Playbook, Name string
		Status, StatusClass    string
		Message                string
		Start, End             pageTime
		Duration               string // "" while it runs
		Running                bool
	}
	noteView struct {
		Title  string
		Format string // "markdown", "html" ...
		AsText bool   // shown as preformatted text rather than read as markdown
		Text   string // the content as text, when AsText
		Blocks []mdBlock
	}
)

// Limits of the Activity section.
const (
	caseActivity   = 1000 // entries shown
	noteRunes      = 4000 // a note's content
	noteTitleRunes = 200
	runFieldRunes  = 80 // a run's action, playbook and name
)

// makeActivity is the Activity section of a case and the marks of its
// timeline.
func makeActivity(acts []store.Activity) ([]activityRow, []timelineMark) {
	rows := make([]activityRow, 0, min(len(acts), caseActivity))
	marks := make([]timelineMark, 0, min(len(acts), caseActivity))
	for _, a := range acts[:min(len(acts), caseActivity)] {
		var (
			row  activityRow
			mark timelineMark
		)
		switch {
		case a.Run != nil:
			row, mark = runActivity(*a.Run)
		case a.Note != nil:
			row, mark = noteActivity(*a.Note)
		default:
			continue
		}
		row.Time = displayTime(a.Time)
		mark.At, _ = parseStoredTime(a.Time)
		rows = append(rows, row)
		marks = append(marks, mark)
	}
	return rows, marks
}

// runStatusClass is the style class of an action run's status.
func runStatusClass(status string) string {
	switch status {
	case store.RunRunning, store.RunSuccess, store.RunFailed:
		return status
	}
	return "other"
}

func runActivity(r store.ActionRun) (activityRow, timelineMark) {
	v := &runView{
		Action:      clip(r.Action, runFieldRunes, false),
		Playbook:    clip(r.Playbook, runFieldRunes, false),
		Name:        clip(r.Name, runFieldRunes, false),
		Status:      clip(r.Status, 20, false),
		StatusClass: runStatusClass(r.Status),
		Message:     clip(r.Message, longValueRunes, true),
		Start:       displayTime(r.StartTime),
		End:         displayTime(deref(r.EndTime)),
		Running:     r.EndTime == nil,
	}
	if start, ok := parseStoredTime(r.StartTime); ok && r.EndTime != nil {
		if end, ok := parseStoredTime(*r.EndTime); ok {
			v.Duration = roundSpan(max(end.Sub(start), 0))
		}
	}
	when := "started " + v.Start.Full + ", no outcome yet"
	if !v.Running {
		when = v.Start.Full + " → " + v.End.Full
		if v.Duration != "" {
			when += " (" + v.Duration + ")"
		}
	}
	lines := []string{
		v.Action + ": " + v.Status,
		"playbook: " + v.Playbook,
	}
	if r.Message != "" {
		lines = append(lines, "message: "+clip(r.Message, tooltipRunes, false))
	}
	lines = append(lines, when)
	anchor := "run-" + strconv.FormatInt(r.ID, 10)
	mark := timelineMark{Kind: markAction, Href: "#" + anchor, Class: "run-" + v.StatusClass, Title: strings.Join(lines, "\n")}
	return activityRow{Anchor: anchor, Kind: "action", Run: v}, mark
}

func noteActivity(n store.Note) (activityRow, timelineMark) {
	v := &noteView{
		Title:  clip(n.Title, noteTitleRunes, false),
		Format: clip(n.NoteFormat, 20, false),
	}
	content := strings.ReplaceAll(n.Content, "\r\n", "\n")
	if strings.TrimSpace(content) != "" {
		content = clip(content, noteRunes, true)
		if n.NoteFormat == "markdown" {
			v.Blocks = parseMarkdown(content)
		} else {
			// HTML (or anything else) is never rendered: its text is
			// shown as it is.
			v.AsText, v.Text = true, content
		}
	}
	anchor := "note-" + strconv.FormatInt(n.ID, 10)
	mark := timelineMark{Kind: markNote, Href: "#" + anchor, Class: "mark-note",
		Title: fmt.Sprintf("note  %s\n%s", displayTime(n.CreateTime).Full, clip(n.Title, tooltipRunes, false))}
	return activityRow{Anchor: anchor, Kind: "note", Note: v}, mark
}

// runTag is an action run as the list of cases shows it: "isolate:
// success".
type runTag struct {
	Label, Class, Title string
}

// listRuns is how many runs a row of the list shows.
const listRuns = 3

func makeRunTags(runs []store.RunState) (tags []runTag, more int) {
	for i, r := range runs {
		if i == listRuns {
			return tags, len(runs) - listRuns
		}
		tags = append(tags, runTag{
			Label: clip(r.Action, 20, false) + ": " + clip(r.Status, 20, false),
			Class: "run-" + runStatusClass(r.Status),
			Title: "playbook " + clip(r.Playbook, runFieldRunes, false),
		})
	}
	return tags, 0
}
