package mockphantom

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// activityOrder returns the anchors of the Activity section's rows, in
// order: "run-3", "note-7".
func activityOrder(body []byte) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<tr id="((?:run|note)-\d+)">`).FindAllSubmatch(body, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// markKinds returns the data-kind of each timeline mark, in drawing order.
func markKinds(body []byte) []string {
	var out []string
	for _, m := range regexp.MustCompile(`class="mark [^"]*" data-kind="([a-z]+)"`).FindAllSubmatch(body, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// TestWebCaseActivity runs the playbooks of a shell case against the fake
// responder: an isolate that succeeds and a terminate that is refused,
// each noted by the responder. The case page lists them in time order and
// draws them in lanes of their own.
func TestWebCaseActivity(t *testing.T) {
	t.Parallel()
	e := newActivityEnv(t, isolateShellPlaybook+terminateShellPlaybook)
	ids := seedCases(t, e, analystCases[:1])
	cid := ids["shell"]
	runs := e.actionRuns(cid)
	if len(runs) != 2 || runs[0]["status"] != "success" || runs[1]["status"] != "failed" {
		t.Fatalf("runs of the shell case = %v, want isolate success, terminate failed", runs)
	}
	r := e.do(http.MethodGet, "/container/"+itoa(cid), nil, asAdmin)
	r.wantStatus(t, http.StatusOK)
	body := string(r.body)

	// Oldest first: each run, then the note the responder wrote during it.
	var notes []map[string]any
	list := e.do(http.MethodGet, "/rest/note?_filter_container="+itoa(cid)+"&sort=id", nil, asAdmin)
	var l struct{ Data []map[string]any }
	if err := json.Unmarshal(list.body, &l); err != nil {
		t.Fatal(err)
	}
	notes = l.Data
	if len(notes) != 2 {
		t.Fatalf("notes of the case = %v, want 2", notes)
	}
	want := []string{"run-" + itoa(num(runs[0]["id"])), "note-" + itoa(num(notes[0]["id"])),
		"run-" + itoa(num(runs[1]["id"])), "note-" + itoa(num(notes[1]["id"]))}
	if got := activityOrder(r.body); !reflect.DeepEqual(got, want) {
		t.Errorf("Activity rows %v, want %v", got, want)
	}
	for _, w := range []string{
		// The run: action, status, playbook, message, times.
		`<strong>isolate</strong> <span class="pill run-success">success</span>`,
		`playbook <span class="mono">isolate-shell</span> · isolate shop/checkout-7d9f8b6c4-x2k9p`,
		`pod shop/checkout-7d9f8b6c4-x2k9p isolated: labelled falco-phantom.io/isolated=`,
		`<strong>terminate</strong> <span class="pill run-failed">failed</span>`,
		"the responder answered 403 action_not_allowed: action terminate is not allowed",
		"2026-11-30 09:00:01.", // opened 1.5 s after the first alert
		// The note: its title, and its markdown read: bold, code, a table.
		"<strong>falco-phantom isolate shop/checkout-7d9f8b6c4-x2k9p: done</strong>",
		"<p><strong>isolate</strong> of pod <code>shop/checkout-7d9f8b6c4-x2k9p</code>: <strong>done</strong> in ",
		"<tr><td>reason</td><td>Terminal shell in container</td></tr>",
		"<tr><td>by</td><td>mockphantom playbook isolate-shell via responder (system:serviceaccount:falco-phantom:falco-phantom-responder)</td></tr>",
		// The timeline's lanes.
		`text-anchor="end">alerts</text>`, `text-anchor="end">actions</text>`, `text-anchor="end">notes</text>`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("case page lacks %q", w)
		}
	}
	if strings.Contains(body, "| reason |") || strings.Contains(body, "**") {
		t.Errorf("case page shows the note's markdown unread")
	}
	// Marks in time order: the first alert, then the runs and notes (opened
	// 1.5 s later), then the other alerts.
	wantKinds := []string{"alert", "action", "note", "action", "note", "alert", "alert", "alert"}
	if got := markKinds(r.body); !reflect.DeepEqual(got, wantKinds) {
		t.Errorf("timeline marks %v, want %v", got, wantKinds)
	}
	// A run's tooltip: action and status, playbook, message, start → end
	// and duration.
	tip := regexp.MustCompile(`(?s)data-kind="action"[^>]*><title>(isolate: success.*?)</title>`).FindStringSubmatch(body)
	if tip == nil {
		t.Fatalf("no tooltip of the isolate run")
	}
	if ok, _ := regexp.MatchString(`^isolate: success\nplaybook: isolate-shell\nmessage: pod shop/checkout-7d9f8b6c4-x2k9p isolated: .*\n`+
		`2026-11-30 09:00:01\.\d{3}Z → 2026-11-30 09:00:01\.\d{3}Z \(\d+ms\)$`, tip[1]); !ok {
		t.Errorf("run tooltip = %q", tip[1])
	}
	if !strings.Contains(body, "note  2026-11-30 09:00:01.") || !strings.Contains(body, "falco-phantom terminate shop/checkout-7d9f8b6c4-x2k9p: refused</title>") {
		t.Errorf("note tooltips lack the time or the title")
	}
	// Marks lead to their rows.
	if !strings.Contains(body, `<a href="#`+want[0]+`"><rect class="mark run-success" data-kind="action"`) ||
		!strings.Contains(body, `<a href="#`+want[1]+`"><polygon class="mark mark-note" data-kind="note"`) {
		t.Errorf("marks do not link to their activity rows")
	}

	// The list tags the case with its runs, in the order they ran.
	listBody := string(e.do(http.MethodGet, "/", nil, asAdmin).body)
	if !strings.Contains(listBody, `<div class="runs"><span class="tag run-success" title="playbook isolate-shell">isolate: success</span>`+
		`<span class="tag run-failed" title="playbook terminate-shell">terminate: failed</span></div>`) {
		t.Errorf("the list does not tag the case with its runs:\n%s", listBody)
	}
}

// TestWebActivityEscapes writes hostile notes and runs: markup,
// attributes, control and bidirectional characters, huge texts. The page
// shows them as text, cut.
func TestWebActivityEscapes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	cid := e.createContainer(map[string]any{"name": "hostile activity", "artifacts": []any{map[string]any{"name": "a"}}})
	long := strings.Repeat("A", 3*noteRunes)
	hostile := "<script>alert(1)</script> <img src=x onerror=alert(2)> \x1b[31m \u202eevil \u2066x"
	e.addRun(t, cid, `<b>pb</b>`+"\u202e", `<i>act</i>`, "failed", hostile+" "+long)
	e.addRun(t, cid, "running-pb", "isolate", "running", "")
	e.addNote(t, cid, `<iframe src=x></iframe>`+"\x1b", strings.Join([]string{
		"**bold <script>alert(3)</script>** and `<img src=y onerror=alert(4)>`",
		"",
		"| <b>k</b> | v |",
		"|---|---|",
		"| <svg onload=alert(5)> | \\| piped `code` " + hostile + " |",
		"",
		"```",
		"<style>body{display:none}</style>",
		"```",
		"[link](javascript:alert(6)) <a href=\"javascript:alert(7)\">x</a> " + long,
	}, "\n"), "markdown")
	e.addNote(t, cid, "html note", `<img src=z onerror="alert(8)"><p onclick=x>hi</p>`, "html")

	body := string(e.do(http.MethodGet, "/container/"+itoa(cid), nil, asAdmin).body)
	_, activity, _ := strings.Cut(body, "<h2>Activity</h2>")
	activity, _, _ = strings.Cut(activity, "</section>")
	for _, f := range []string{"<script", "<img", "<iframe", "<b>", "<i>", "<p onclick", "\x1b", "\u202e", "\u2066"} {
		if strings.Contains(body, f) {
			t.Errorf("case page contains %q", f)
		}
	}
	for _, f := range []string{"<svg", "<style", "<a ", `href="javascript`} {
		if strings.Contains(activity, f) {
			t.Errorf("the Activity section contains %q", f)
		}
	}
	if m := regexp.MustCompile(`<[a-z]+[^>]* on[a-z]+=`).FindString(body); m != "" {
		t.Errorf("page has an event handler attribute: %q", m)
	}
	for _, w := range []string{
		"&lt;b&gt;pb&lt;/b&gt;\\u202e", "<strong>&lt;i&gt;act&lt;/i&gt;</strong>",
		"&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(2)&gt; \\x1b[31m \\u202eevil \\u2066x",
		"started ", ", no outcome yet", `<span class="pill run-running">running</span>`,
		"&lt;iframe src=x&gt;&lt;/iframe&gt;\\x1b",
		"<strong>bold &lt;script&gt;alert(3)&lt;/script&gt;</strong> and <code>&lt;img src=y onerror=alert(4)&gt;</code>",
		"<th>&lt;b&gt;k&lt;/b&gt;</th>", "<td>&lt;svg onload=alert(5)&gt;</td><td>| piped <code>code</code> &lt;script&gt;",
		"<pre>&lt;style&gt;body{display:none}&lt;/style&gt;</pre>",
		"[link](javascript:alert(6)) &lt;a href=&#34;javascript:alert(7)&#34;&gt;x&lt;/a&gt; AAAA",
		`html, shown as text</span>`, `<pre class="note-text">&lt;img src=z onerror=&#34;alert(8)&#34;&gt;&lt;p onclick=x&gt;hi&lt;/p&gt;</pre>`,
	} {
		if !strings.Contains(activity, w) {
			t.Errorf("Activity lacks %q", w)
		}
	}
	// Long texts are cut: the run's message as every long value, the
	// note's content at noteRunes.
	if strings.Contains(body, strings.Repeat("A", noteRunes)) || !strings.Contains(activity, "AAA…") {
		t.Errorf("a long text is not cut")
	}
	if c := strings.Count(activity, "AAA…"); c != 2 {
		t.Errorf("%d cut texts in the Activity, want 2 (the run's message, the note)", c)
	}
}

func TestParseMarkdown(t *testing.T) {
	t.Parallel()
	text := func(s string) mdSpan { return mdSpan{Text: s} }
	bold := func(s string) mdSpan { return mdSpan{Text: s, Bold: true} }
	code := func(s string) mdSpan { return mdSpan{Text: s, Code: true} }
	para := func(spans ...mdSpan) mdBlock { return mdBlock{Para: spans} }
	tests := []struct {
		name, in string
		want     []mdBlock
	}{
		{"plain", "just text", []mdBlock{para(text("just text"))}},
		{"bold and code", "**isolate** of pod `shop/web`: **done**",
			[]mdBlock{para(bold("isolate"), text(" of pod "), code("shop/web"), text(": "), bold("done"))}},
		{"code in bold", "**a `b` c**", []mdBlock{para(bold("a "), mdSpan{Text: "b", Code: true, Bold: true}, bold(" c"))}},
		{"unclosed markers are text", "a ** b ` c", []mdBlock{para(text("a ** b ` c"))}},
		{"empty bold is text", "a **** b", []mdBlock{para(text("a **** b"))}},
		{"escapes", `\*\*not bold\*\* \` + "`x\\` a\\b", []mdBlock{para(text("**not bold** `x` a\\b"))}},
		{"no escapes in code", "`a\\*b`", []mdBlock{para(code("a\\*b"))}},
		{"paragraphs keep line breaks", "one\ntwo\n\n\nthree", []mdBlock{para(text("one\ntwo")), para(text("three"))}},
		{"table without a header", "| | |\n|---|---|\n| time | now |\n| by | a \\| b |\n| short |\n| x | y | z |",
			[]mdBlock{{Table: &mdTable{Rows: [][]mdCell{
				{{text("time")}, {text("now")}},
				{{text("by")}, {text("a | b")}},
				{{text("short")}, nil},
				{{text("x")}, {text("y")}},
			}}}}},
		{"table with a header, text around", "before\n|a|**b**|\n|:-:|--:|\n|1|2|\nafter",
			[]mdBlock{para(text("before")), {Table: &mdTable{Head: []mdCell{{text("a")}, {bold("b")}},
				Rows: [][]mdCell{{{text("1")}, {text("2")}}}}}, para(text("after"))}},
		{"not a delimiter row", "| a |\n| b |", []mdBlock{para(text("| a |\n| b |"))}},
		{"too wide a table is text", "|" + strings.Repeat(" x |", mdMaxColumns+1) + "\n|" + strings.Repeat("---|", mdMaxColumns+1),
			[]mdBlock{para(text("|" + strings.Repeat(" x |", mdMaxColumns+1) + "\n|" + strings.Repeat("---|", mdMaxColumns+1)))}},
		{"fenced code", "```json\n{\"a\": **1**}\n\n```\nafter", []mdBlock{{Pre: "{\"a\": **1**}\n"}, para(text("after"))}},
		{"unclosed fence", "```\ncode", []mdBlock{{Pre: "code"}}},
		{"markup is text", "<b>x</b>", []mdBlock{para(text("<b>x</b>"))}},
		{"utf-8", "**héllo** `wörld`", []mdBlock{para(bold("héllo"), text(" "), code("wörld"))}},
	}
	for _, tt := range tests {
		if got := parseMarkdown(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: parseMarkdown(%q) =\n%+v\nwant\n%+v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestWebListRunTags(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	busy := e.createContainer(map[string]any{"name": "busy"})
	quiet := e.createContainer(map[string]any{"name": "quiet"})
	for i, s := range []string{"success", "failed", "running", "success", "failed"} {
		e.addRun(t, busy, "pb-"+itoa(int64(i)), []string{"isolate", "label", "describe", "annotate", "cordon"}[i], s, "")
	}
	body := e.do(http.MethodGet, "/", nil, asAdmin).body
	if got := bytes.Count(body, []byte(`class="runs"`)); got != 1 {
		t.Errorf("%d rows have run tags, want 1 (case %d has none)", got, quiet)
	}
	want := `<div class="runs"><span class="tag run-success" title="playbook pb-0">isolate: success</span>` +
		`<span class="tag run-failed" title="playbook pb-1">label: failed</span>` +
		`<span class="tag run-running" title="playbook pb-2">describe: running</span><span class="note">+2</span></div>`
	if !bytes.Contains(body, []byte(want)) {
		t.Errorf("list lacks %s:\n%s", want, body)
	}
}

func TestLayoutTimelineLanes(t *testing.T) {
	t.Parallel()
	at := func(s int) time.Time { return fixtureBase.Add(time.Duration(s) * time.Second) }
	v, _ := layoutTimeline([]timelineMark{
		{Kind: markNote, At: at(2)}, {Kind: markAlert, At: at(0)}, {Kind: markAction, At: at(1)},
	})
	var labels []string
	for _, l := range v.Lanes {
		labels = append(labels, l.Label)
	}
	if !reflect.DeepEqual(labels, []string{"alerts", "actions", "notes"}) {
		t.Fatalf("lanes %q, want alerts, actions, notes", labels)
	}
	for i, want := range []struct {
		kind  markKind
		shape markShape
		lane  int
	}{{markAlert, shapeCircle, 0}, {markAction, shapeSquare, 1}, {markNote, shapeDiamond, 2}} {
		m := v.Marks[i]
		if m.Kind != want.kind || m.Shape != want.shape || m.Y != float64(v.Lanes[want.lane].Y) {
			t.Errorf("mark %d: %s %s at y %v; want %s %s in lane %q (y %d)", i, m.Kind, m.Shape, m.Y, want.kind, want.shape, labels[want.lane], v.Lanes[want.lane].Y)
		}
	}
	// Without alerts the actions lane is the first.
	v, _ = layoutTimeline([]timelineMark{{Kind: markAction, At: at(1)}})
	if len(v.Lanes) != 1 || v.Lanes[0].Label != "actions" || v.Lanes[0].Top != tlTop {
		t.Errorf("lanes of a case with a run only: %+v", v.Lanes)
	}
	if got, want := (placedMark{X: 100, Y: 27}).Points(), "100.0,19.5 107.5,27.0 100.0,34.5 92.5,27.0"; got != want {
		t.Errorf("a diamond's points %q, want %q", got, want)
	}
}

// TestMakeActivityCut shows the first caseActivity entries, each with its
// mark, and skips entries that are neither a run nor a note.
func TestMakeActivityCut(t *testing.T) {
	t.Parallel()
	acts := []store.Activity{{Time: "2026-11-30T09:00:00.000000Z"}}
	for i := range caseActivity + 2 {
		acts = append(acts, store.Activity{Time: store.FormatTime(fixtureBase.Add(time.Duration(i) * time.Millisecond)),
			Note: &store.Note{ID: int64(i + 1), Title: "n", NoteFormat: "markdown"}})
	}
	rows, marks := makeActivity(acts)
	if len(rows) != caseActivity-1 || len(marks) != len(rows) {
		t.Fatalf("%d rows and %d marks, want %d of each (the first %d entries, one of them empty)", len(rows), len(marks), caseActivity-1, caseActivity)
	}
	if rows[0].Anchor != "note-1" || marks[0].Href != "#note-1" || !marks[0].At.Equal(fixtureBase) || rows[0].Note.Blocks != nil {
		t.Errorf("first row %+v, mark %+v", rows[0], marks[0])
	}
}
