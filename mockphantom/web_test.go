package mockphantom

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestWebPagesEscape(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	long := strings.Repeat("A", 5000)
	cmd := `sh -c "<script>alert(1)</script>" 'it''s' ` + "\x1b[31m\u202eevil " + long
	// Encoded without HTML escaping, so that the stored JSON holds a raw
	// "<" as many clients would send it.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(map[string]any{
		"name":        "<b>bold</b> case",
		"label":       "events",
		"description": `He said "hi" & left`,
		"severity":    "high",
		"artifacts": []any{map[string]any{
			"name": "Terminal shell in container",
			"cef": map[string]any{
				"commandLine": cmd, "kubernetesPodName": "web-1", "kubernetesNamespace": "shop",
				"containerName": "main", "userName": "root", "processName": "sh",
			},
			"data": map[string]any{"output": "<img src=x onerror=alert(2)>"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	created := e.do(http.MethodPost, "/rest/container", buf.Bytes(), asAdmin)
	created.wantStatus(t, http.StatusOK)
	cid := num(created.decode(t)["id"])

	pages := []struct {
		path        string
		maxRunes    int
		cutLong     bool // false: the page also has the full CEF block
		wantPresent []string
	}{
		{"/", shortValueRunes, true, []string{`http-equiv="refresh"`, "web-1", "shop", "main", "root", "sev-high"}},
		{"/container/" + itoa(cid), longValueRunes, false, []string{`http-equiv="refresh"`, "web-1", "&lt;img src=x onerror=alert(2)&gt;"}},
	}
	for _, p := range pages {
		t.Run(p.path, func(t *testing.T) {
			t.Parallel()
			r := e.do(http.MethodGet, p.path, nil, asAdmin)
			r.wantStatus(t, http.StatusOK)
			body := string(r.body)
			if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q, want text/html; charset=utf-8", ct)
			}
			if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy = %q, want default-src 'none'", csp)
			}
			// No raw markup from the data, no raw control characters, no
			// external assets.
			for _, f := range []string{"<script", "<b>bold", "<img", "\x1b", "\u202e", "http://", "https://"} {
				if strings.Contains(strings.ToLower(body), strings.ToLower(f)) {
					t.Errorf("page contains %q", f)
				}
			}
			if p.cutLong && strings.Contains(body, strings.Repeat("A", p.maxRunes+1)) {
				t.Errorf("page shows more than %d runes of a long value", p.maxRunes)
			}
			want := append([]string{
				"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;bold&lt;/b&gt; case",
				"He said &#34;hi&#34; &amp; left", `\x1b[31m`, `\u202eevil`, "AAAA…",
			}, p.wantPresent...)
			for _, w := range want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
	t.Run("missing case", func(t *testing.T) {
		t.Parallel()
		e.do(http.MethodGet, "/container/999", nil, asAdmin).wantStatus(t, http.StatusNotFound)
		e.do(http.MethodGet, "/container/x", nil, asAdmin).wantStatus(t, http.StatusNotFound)
	})
}

func TestWebPageEmptyAndDashes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	r := e.do(http.MethodGet, "/", nil, asAdmin)
	r.wantStatus(t, http.StatusOK)
	if !strings.Contains(string(r.body), "No cases yet") {
		t.Errorf("empty index page lacks the no-cases note:\n%s", r.body)
	}
	e.createContainer(map[string]any{"name": "c", "artifacts": []any{map[string]any{"name": "bare"}}})
	r = e.do(http.MethodGet, "/", nil, asAdmin)
	if !strings.Contains(string(r.body), "<b>pod</b> -</span>") {
		t.Errorf("absent CEF values are not shown as \"-\":\n%s", r.body)
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        string
		limit     int
		multiline bool
		want      string
	}{
		{"", 10, false, "-"},
		{"  ", 10, false, "-"},
		{"abc", 10, false, "abc"},
		{"abcdef", 3, false, "abc…"},
		{"héllo wörld", 5, false, "héllo…"},
		{"a\nb\tc", 10, false, `a\x0ab\x09c`},
		{"a\nb\tc", 10, true, "a\nb\tc"},
		{"x\x00y\x7f", 10, false, `x\x00y\x7f`},
		{"a\u202eb\u2066c", 10, false, `a\u202eb\u2066c`},
		{"bad\xffbyte", 20, false, `bad\ufffdbyte`},
		{"<script>", 20, false, "<script>"}, // HTML escaping is html/template's job
	}
	for _, tt := range tests {
		if got := clip(tt.in, tt.limit, tt.multiline); got != tt.want {
			t.Errorf("clip(%q, %d, %v) = %q, want %q", tt.in, tt.limit, tt.multiline, got, tt.want)
		}
	}
}

func TestWebIndexLimits(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	arts := make([]any, pageTimeline+5)
	for i := range arts {
		arts[i] = map[string]any{"name": "artifact " + itoa(int64(i))}
	}
	first := e.createContainer(map[string]any{"name": "with many artifacts", "artifacts": arts})
	var last int64
	for range pageCases + 4 {
		last = e.createContainer(map[string]any{"name": "filler"})
	}
	r := e.do(http.MethodGet, "/", nil, asAdmin)
	r.wantStatus(t, http.StatusOK)
	body := string(r.body)
	if want := itoa(int64(pageCases+5)) + " cases in all; the " + itoa(pageCases) + " newest"; !strings.Contains(body, want) {
		t.Errorf("index lacks %q", want)
	}
	if got := strings.Count(body, `<section class="case">`); got != pageCases {
		t.Errorf("index shows %d cases, want %d", got, pageCases)
	}
	if i, j := strings.Index(body, ">#"+itoa(last)+" "), strings.Index(body, ">#"+itoa(last-1)+" "); i < 0 || j < 0 || i > j {
		t.Errorf("newest case #%d is not shown before #%d", last, last-1)
	}
	if strings.Contains(body, ">#"+itoa(first)+" ") {
		t.Errorf("the oldest case #%d is shown, want only the %d newest", first, pageCases)
	}

	c := e.do(http.MethodGet, "/container/"+itoa(first), nil, asAdmin)
	c.wantStatus(t, http.StatusOK)
	if got := strings.Count(string(c.body), `<section class="artifact">`); got != len(arts) {
		t.Errorf("case page shows %d artifacts, want %d", got, len(arts))
	}
}

func TestWebIndexTimelineLimit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	arts := make([]any, pageTimeline+5)
	for i := range arts {
		arts[i] = map[string]any{"name": "artifact"}
	}
	e.createContainer(map[string]any{"name": "many", "artifacts": arts})
	body := string(e.do(http.MethodGet, "/", nil, asAdmin).body)
	if got := strings.Count(body, "<li>"); got != pageTimeline {
		t.Errorf("timeline has %d entries, want %d", got, pageTimeline)
	}
	if !strings.Contains(body, "5 more artifacts") {
		t.Errorf("index lacks the \"5 more artifacts\" link")
	}
}
