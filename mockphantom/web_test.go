package mockphantom

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
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
		"owner_id":    "<i>eve</i>",
		"artifacts": []any{map[string]any{
			"name": "Terminal shell in container",
			"cef": map[string]any{
				"commandLine": cmd, "kubernetesPodName": "web-1", "kubernetesNamespace": "shop",
				"containerName": "main", "userName": "root", "processName": "sh",
				"containerImage": "<img src=x>", "sourceHostName": "node-\u202e1",
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
		cutLong     bool // false: the page also has the whole command line
		wantPresent []string
	}{
		{"/", shortValueRunes, true, []string{"web-1", "shop", "sev-high", "&lt;img src=x&gt;", `node-\u202e1`}},
		{"/container/" + itoa(cid), longValueRunes, true, []string{"web-1", "root", "&lt;img src=x onerror=alert(2)&gt;",
			`node-\u202e1`, "&lt;i&gt;eve&lt;/i&gt;"}},
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
			if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
				t.Errorf("Content-Security-Policy = %q, want default-src 'none' and no script-src", csp)
			}
			// No raw markup from the data, no raw control characters, no
			// external assets, no scripts of the page's own.
			for _, f := range []string{"<script", "<b>bold", "<img", "<i>", "\x1b", "\u202e", "http://", "https://", " on"} {
				if f == " on" {
					if m := regexp.MustCompile(`<[a-z]+[^>]* on[a-z]+=`).FindString(body); m != "" {
						t.Errorf("page has an event handler attribute: %q", m)
					}
					continue
				}
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
	t.Run("hostile search text", func(t *testing.T) {
		t.Parallel()
		r := e.do(http.MethodGet, "/?q="+url.QueryEscape("\"><script>alert(5)</script>\x1b\u202e"), nil, asAdmin)
		r.wantStatus(t, http.StatusOK)
		for _, f := range []string{"<script>alert(5)", "\x1b", "\u202e"} {
			if strings.Contains(string(r.body), f) {
				t.Errorf("page echoes %q", f)
			}
		}
		if !strings.Contains(string(r.body), `value="&#34;&gt;&lt;script&gt;alert(5)&lt;/script&gt;"`) {
			t.Errorf("search field does not show the search text escaped")
		}
	})
}

func TestWebPageEmptyAndDashes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	r := e.do(http.MethodGet, "/", nil, asAdmin)
	r.wantStatus(t, http.StatusOK)
	if !strings.Contains(string(r.body), "No cases yet") || !strings.Contains(string(r.body), "0 cases") {
		t.Errorf("empty index page lacks the no-cases note or the count:\n%s", r.body)
	}
	id := e.createContainer(map[string]any{"name": "c", "artifacts": []any{map[string]any{"name": "bare"}}})
	r = e.do(http.MethodGet, "/", nil, asAdmin)
	if !strings.Contains(string(r.body), ">1 case<") {
		t.Errorf("index does not say \"1 case\":\n%s", r.body)
	}
	if !strings.Contains(string(r.body), `<span title="">-</span>`) {
		t.Errorf("absent CEF values are not shown as \"-\":\n%s", r.body)
	}
	c := e.do(http.MethodGet, "/container/"+itoa(id), nil, asAdmin)
	if !strings.Contains(string(c.body), "No CEF fields.") || !strings.Contains(string(c.body), "unassigned") {
		t.Errorf("case page of an artifact without CEF lacks the notes:\n%s", c.body)
	}
}

// rowIDs returns the case ids of the rows of a list page, in order.
func rowIDs(body []byte) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`<td class="num nowrap"><a href="container/(\d+)">`).FindAllSubmatch(body, -1) {
		ids = append(ids, string(m[1]))
	}
	return ids
}

func TestWebListFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	ids := seedCases(t, e, analystCases)
	id := func(keys ...string) []string {
		var out []string
		for _, k := range keys {
			out = append(out, itoa(ids[k]))
		}
		return out
	}
	tests := []struct {
		query string
		want  []string
		count string
	}{
		{"", id("privileged", "shell2", "etc", "pkgmgmt", "netcat", "apiserver", "miner", "dropexec", "shadow", "shell"), ">10 cases<"},
		{"severity=high", id("miner", "dropexec"), ">2 cases match the filters<"},
		{"status=closed", id("privileged", "apiserver"), ""},
		{"status=open&severity=medium", id("pkgmgmt", "shadow"), ""},
		{"rule=" + url.QueryEscape("Terminal shell in container"), id("shell2", "shell"), ""},
		{"namespace=payments", id("shell2", "pkgmgmt", "shadow"), ""},
		{"namespace=payments&rule=" + url.QueryEscape("Terminal shell in container"), id("shell2"), ">1 case matches the filters<"},
		{"q=SHADOW", id("shadow"), ""},                               // a file name, any case
		{"q=stratum", id("miner"), ""},                               // a command line
		{"q=worker-3", id("privileged", "apiserver", "miner"), ""},   // a node
		{"q=nginx", id("dropexec"), ""},                              // an image
		{"q=ledger-api-5f6c", id("shell2", "pkgmgmt", "shadow"), ""}, // a pod
		{"q=package+management", id("pkgmgmt"), ""},                  // a rule
		{"q=nothing-like-this", nil, "No case matches these filters"},
		{"severity=" + url.QueryEscape("\x1b"), id("privileged", "shell2", "etc", "pkgmgmt", "netcat", "apiserver", "miner", "dropexec", "shadow", "shell"), ""},
		{"page_size=4", id("privileged", "shell2", "etc", "pkgmgmt"), "Cases 1–4 of 10"},
		{"page_size=4&page=3", id("shadow", "shell"), "Cases 9–10 of 10"},
		{"page_size=4&page=99", id("shadow", "shell"), "Page 3 of 3"},
		{"page_size=4&page=99999999999999999999", id("privileged", "shell2", "etc", "pkgmgmt"), "Page 1 of 3"}, // not an int
		{"page_size=4&page=9223372036854775807", id("shadow", "shell"), "Page 3 of 3"},
		{"page_size=4&page=x", id("privileged", "shell2", "etc", "pkgmgmt"), "Page 1 of 3"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			r := e.do(http.MethodGet, "/?"+tt.query, nil, asAdmin)
			r.wantStatus(t, http.StatusOK)
			if got := rowIDs(r.body); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("GET /?%s shows cases %v, want %v", tt.query, got, tt.want)
			}
			if tt.count != "" && !strings.Contains(string(r.body), tt.count) {
				t.Errorf("GET /?%s lacks %q", tt.query, tt.count)
			}
		})
	}

	t.Run("pager links keep the filters", func(t *testing.T) {
		t.Parallel()
		body := string(e.do(http.MethodGet, "/?page_size=1&severity=high&live=1", nil, asAdmin).body)
		if !strings.Contains(body, `href="?live=1&amp;page=2&amp;page_size=1&amp;severity=high" rel="next"`) {
			t.Errorf("next link lacks the filters:\n%s", body)
		}
		if !strings.Contains(body, `<meta http-equiv="refresh" content="5">`) {
			t.Errorf("live page does not reload itself")
		}
		if strings.Contains(string(e.do(http.MethodGet, "/", nil, asAdmin).body), `http-equiv="refresh"`) {
			t.Errorf("page reloads itself without live=1")
		}
	})
	t.Run("row facts", func(t *testing.T) {
		t.Parallel()
		body := string(e.do(http.MethodGet, "/?q=stratum", nil, asAdmin).body)
		for _, want := range []string{"batch", "report-runner-28871440-7xk2d", "python:3.12-slim", "worker-3",
			"2026-11-30 09:21:00", "2026-11-30 09:26:00", ">5<", "and 1 other", "and 1 other</span>"} {
			if !strings.Contains(body, want) {
				t.Errorf("miner row lacks %q", want)
			}
		}
		body = string(e.do(http.MethodGet, "/?q=shadow", nil, asAdmin).body)
		if !strings.Contains(body, "owner alice") {
			t.Errorf("row lacks the owner")
		}
	})
	t.Run("filter choices", func(t *testing.T) {
		t.Parallel()
		body := string(e.do(http.MethodGet, "/?namespace=payments", nil, asAdmin).body)
		for _, want := range []string{`<option value="payments" selected>payments</option>`, `<option value="kube-system">`,
			`<option value="Write below etc">`, `<option value="high">`, `<option value="closed">`} {
			if !strings.Contains(body, want) {
				t.Errorf("filters lack %q", want)
			}
		}
	})
}

func TestWebCasePage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	ids := seedCases(t, e, analystCases)
	body := string(e.do(http.MethodGet, "/container/"+itoa(ids["shell"]), nil, asAdmin).body)
	// The header: the incident's facts, once.
	for _, want := range []string{"Terminal shell in container", "checkout-7d9f8b6c4-x2k9p", "ghcr.io/acme/checkout:2.4.1",
		"worker-1", "3f9a1c2b7d4e", "2026-11-30 09:00:00", "2026-11-30 09:06:40", "unassigned"} {
		if !strings.Contains(body, want) {
			t.Errorf("case page lacks %q", want)
		}
	}
	// The timeline: one mark per alert, with the command line and user in
	// its tooltip.
	if got := strings.Count(body, `<circle class="mark`); got != 4 {
		t.Errorf("timeline has %d marks, want 4", got)
	}
	if !strings.Contains(body, "command: cat /etc/os-release\nuser: root\nfile: /etc/os-release</title>") {
		t.Errorf("mark tooltip lacks the command, user and file:\n%s", body)
	}
	// The alerts: what changes from one to the next.
	for _, want := range []string{"<code>curl -s http://checkout-db:5432/</code>", `<td class="mono">/etc/os-release</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("alerts table lacks %q", want)
		}
	}
	if strings.Contains(body, "<th>Rule</th>") {
		t.Errorf("alerts table repeats the rule though every alert has the case's")
	}
	// Every CEF field.
	for _, want := range []string{"<code>falcoEventId</code>", "<code>terminal</code>", "<code>34817</code>", "k8s pod name"} {
		if !strings.Contains(body, want) {
			t.Errorf("CEF tables lack %q", want)
		}
	}
	if got := strings.Count(body, `<details class="artifact"`); got != 4 {
		t.Errorf("case page has %d CEF tables, want 4", got)
	}
}

// formToken reads the token of the case page's form.
func formTokenOf(t *testing.T, e *testEnv, id int64) string {
	t.Helper()
	body := e.do(http.MethodGet, "/container/"+itoa(id), nil, asAdmin).body
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("case page has no form token:\n%s", body)
	}
	return string(m[1])
}

func TestWebCaseForm(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	id := e.createContainer(map[string]any{"name": "case"})
	other := e.createContainer(map[string]any{"name": "other"})
	token := formTokenOf(t, e, id)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(t *testing.T, cid int64, form url.Values, site string) response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/container/"+itoa(cid), strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		asAdmin(req)
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return response{status: res.StatusCode, header: res.Header, body: b.Bytes()}
	}
	rest := func(cid int64) map[string]any {
		return e.do(http.MethodGet, "/rest/container/"+itoa(cid), nil, asAdmin).decode(t)
	}

	refused := []struct {
		name   string
		cid    int64
		form   url.Values
		site   string
		status int
		msg    string
	}{
		{"no token", id, url.Values{"status": {"closed"}}, "same-origin", 403, "token is missing or out of date"},
		{"wrong token", id, url.Values{"status": {"closed"}, "csrf": {token + "x"}}, "same-origin", 403, "token"},
		{"another case's token", other, url.Values{"status": {"closed"}, "csrf": {token}}, "same-origin", 403, "token"},
		{"cross-site", id, url.Values{"status": {"closed"}, "csrf": {token}}, "cross-site", 403, "only be sent from the case page"},
		{"same-site", id, url.Values{"status": {"closed"}, "csrf": {token}}, "same-site", 403, "only be sent from the case page"},
		{"bad status", id, url.Values{"status": {"pending"}, "csrf": {token}}, "same-origin", 400, "status &#34;pending&#34; is not valid"},
		{"empty status", id, url.Values{"status": {""}, "csrf": {token}}, "same-origin", 400, "status must not be empty"},
		{"no such case", 999, url.Values{"status": {"closed"}, "csrf": {token}}, "same-origin", 403, "token"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, tt.cid, tt.form, tt.site)
			if r.status != tt.status || !strings.Contains(string(r.body), tt.msg) {
				t.Errorf("status %d, body %s; want %d with %q", r.status, r.body, tt.status, tt.msg)
			}
			if got := rest(tt.cid)["status"]; tt.cid != 999 && got != "new" {
				t.Errorf("a refused form changed the status to %v", got)
			}
		})
	}

	t.Run("saved", func(t *testing.T) {
		for _, tt := range []struct {
			site, owner string
			wantOwner   any
		}{
			{"same-origin", "alice", "alice"},
			{"", "42", 42.0}, // clients that send no Sec-Fetch-Site rely on the token
			{"none", "", nil},
		} {
			r := post(t, id, url.Values{"status": {"open"}, "owner": {tt.owner}, "csrf": {token}}, tt.site)
			if r.status != http.StatusSeeOther || r.header.Get("Location") != itoa(id)+"?saved=1" {
				t.Fatalf("status %d, Location %q; want 303 to %q", r.status, r.header.Get("Location"), itoa(id)+"?saved=1")
			}
			got := rest(id)
			if got["status"] != "open" || got["owner_id"] != tt.wantOwner {
				t.Errorf("after the form (owner %q): status %v, owner_id %#v; want open, %#v", tt.owner, got["status"], got["owner_id"], tt.wantOwner)
			}
		}
		if body := string(e.do(http.MethodGet, "/container/"+itoa(id)+"?saved=1", nil, asAdmin).body); !strings.Contains(body, "Saved.") {
			t.Errorf("case page after saving lacks the note")
		}
	})
	t.Run("another server's token", func(t *testing.T) {
		e2 := newTestEnv(t, Config{})
		e2.createContainer(map[string]any{"name": "case"})
		if formTokenOf(t, e2, 1) == formTokenOf(t, e, 1) {
			t.Errorf("two servers sign forms with the same key")
		}
	})
}

func TestLayoutTimeline(t *testing.T) {
	t.Parallel()
	at := func(s int) time.Time { return fixtureBase.Add(time.Duration(s) * time.Second) }
	v, ok := layoutTimeline([]timelineMark{
		{Kind: markAlert, At: at(120)}, {Kind: markAlert, At: at(0)}, {Kind: markAlert}, {Kind: markAlert, At: at(60)},
	})
	if !ok || len(v.Marks) != 3 {
		t.Fatalf("layoutTimeline: ok %v, %d marks; want 3 (the one without a time is left out)", ok, len(v.Marks))
	}
	if v.Marks[0].X != float64(v.Left) || v.Marks[2].X != float64(v.Right) || v.Marks[1].X != float64(v.Left+v.Right)/2 {
		t.Errorf("marks at x %v, %v, %v; want %d, the middle, %d", v.Marks[0].X, v.Marks[1].X, v.Marks[2].X, v.Left, v.Right)
	}
	if len(v.Lanes) != 1 || v.Lanes[0].Label != "alerts" || v.Marks[0].Y != float64(v.Lanes[0].Y) {
		t.Errorf("lanes %+v, mark y %v; want one lane of alerts holding the marks", v.Lanes, v.Marks[0].Y)
	}
	var labels []string
	for _, tk := range v.Ticks {
		labels = append(labels, tk.Label)
	}
	if got := strings.Join(labels, " "); got != "09:00:00 09:00:30 09:01:00 09:01:30 09:02:00" {
		t.Errorf("ticks %q", got)
	}
	if v.Span != "2 min 0 s" || v.From != "2026-11-30 09:00:00.000Z" {
		t.Errorf("span %q from %q", v.Span, v.From)
	}

	one, _ := layoutTimeline([]timelineMark{{Kind: markAlert, At: at(5)}})
	if x := one.Marks[0].X; x != float64(one.Left+one.Right)/2 {
		t.Errorf("a single mark at x %v, want the middle", x)
	}
	if _, ok := layoutTimeline([]timelineMark{{Kind: markAlert}}); ok {
		t.Errorf("a timeline of marks without times is drawn")
	}
	long, _ := layoutTimeline([]timelineMark{{Kind: markAlert, At: at(0)}, {Kind: markAlert, At: at(3 * 86400)}})
	if len(long.Ticks) > tlMaxTicks+1 || long.Ticks[0].Label != "Nov 30 12:00" {
		t.Errorf("ticks over three days: %+v", long.Ticks)
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
		if tt.in != "" && strings.TrimSpace(tt.in) != "" && plainText(tt.in) != (clip(tt.in, 100, false) == tt.in) {
			t.Errorf("plainText(%q) = %v, but clip changes it: %v", tt.in, plainText(tt.in), clip(tt.in, 100, false) != tt.in)
		}
	}
	if got := stripHidden("a\x1b\u202eb\xffc"); got != "abc" {
		t.Errorf("stripHidden = %q, want abc", got)
	}
}

func TestWebCaseTruncated(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	arts := make([]any, caseArtifacts+3)
	for i := range arts {
		arts[i] = map[string]any{"name": "artifact", "cef": map[string]any{"commandLine": "cmd " + itoa(int64(i))}}
	}
	id := e.createContainer(map[string]any{"name": "many", "artifacts": arts})
	body := string(e.do(http.MethodGet, "/container/"+itoa(id), nil, asAdmin).body)
	if got := strings.Count(body, `<circle class="mark`); got != caseArtifacts {
		t.Errorf("timeline has %d marks, want %d", got, caseArtifacts)
	}
	if !strings.Contains(body, "Only the first 1000 of 1003 artifacts are shown") {
		t.Errorf("case page does not say it shows only some artifacts")
	}
	list := string(e.do(http.MethodGet, "/", nil, asAdmin).body)
	if !strings.Contains(list, "and 1002 others") || !strings.Contains(list, "and 983 more on the case page") {
		t.Errorf("list does not count the case's command lines")
	}
}
