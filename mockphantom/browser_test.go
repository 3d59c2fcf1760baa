package mockphantom

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The web page in a real browser: Debian's chromium, headless, driven
// through the DevTools protocol. The tests skip when no browser is found,
// unless FALCO_PHANTOM_REQUIRE_BROWSER=1 (set by CI) makes that a failure.

const (
	// envBrowser names the browser to run, a path or a name in PATH.
	envBrowser = "FALCO_PHANTOM_BROWSER"
	// envRequireBrowser=1 fails the tests that need a browser when none is
	// found.
	envRequireBrowser = "FALCO_PHANTOM_REQUIRE_BROWSER"
)

var writeScreenshots = flag.Bool("screenshots", false,
	"TestScreenshots writes docs/images/mock-soar-cases.png and mock-soar-case.png")

// findBrowser returns the browser's path, or why there is none.
func findBrowser() (string, error) {
	if name := os.Getenv(envBrowser); name != "" {
		path, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", envBrowser, name, err)
		}
		return path, nil
	}
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("none of %s is in PATH (apt-get install chromium, or set %s to the browser)",
		strings.Join(names, ", "), envBrowser)
}

// startBrowser starts a headless browser for the test and its subtests,
// with a window of width x height; each tab of newTab runs in it.
func startBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	path, err := findBrowser()
	if err != nil {
		if os.Getenv(envRequireBrowser) == "1" {
			t.Fatalf("browser tests: no browser: %v (%s=1 makes this a failure)", err, envRequireBrowser)
		}
		t.Skipf("browser tests: SKIPPING: no browser: %v; %s=1 makes this a failure", err, envRequireBrowser)
	}
	// Removed after the browser ends (cleanups run last-in, first-out).
	profile, tmp := t.TempDir(), t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Env("TMPDIR="+tmp), // its sockets and shared memory, not left in /tmp
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
		// Nothing but the page under test: no calls home, no updates.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser to exit
	})
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("failed to start %s: %v", path, err)
	}
	return browser
}

// newTab opens a tab that sends the test server's credentials with every
// request, as a browser does once the user has typed them.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("failed to open a tab: %v", err)
	}
	cred := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	if _, err := chromedp.Call(tab, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(tab, network.SetExtraHTTPHeaders,
		network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Basic " + cred}}); err != nil {
		t.Fatal(err)
	}
	return tab
}

// localhostURL is the test server's URL for a browser, named by
// "localhost", so that pages served from "127.0.0.1" are another site.
func localhostURL(t *testing.T, e *testEnv) string {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return "http://localhost:" + port
}

// navigate loads url in tab and fails the test unless the status is want.
func navigate(t *testing.T, tab context.Context, url string, want int) {
	t.Helper()
	res, err := chromedp.Run(tab, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
	if int(res.Status) != want {
		t.Fatalf("navigate to %s: status %d, want %d", url, res.Status, want)
	}
}

// submit runs steps that send a form and waits for the answer's page.
func submit(t *testing.T, tab context.Context, want int, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	res, err := chromedp.RunResponse(tab, steps...)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if int(res.Status) != want {
		t.Fatalf("submit: the page after it has status %d (%s), want %d", res.Status, res.URL, want)
	}
}

// eval evaluates a JavaScript expression in the page (the page itself
// runs no script: its CSP forbids it; this is the test's own probe).
func eval[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// texts returns the text of each element that selector matches.
func texts(t *testing.T, tab context.Context, selector string) []string {
	t.Helper()
	return eval[[]string](t, tab, fmt.Sprintf(`Array.from(document.querySelectorAll(%q), e => e.textContent.trim())`, selector))
}

// wrappedLabels returns the labels of the page (table headers, pills, the
// names of fields) whose own text takes more than one line.
func wrappedLabels(t *testing.T, tab context.Context) []string {
	t.Helper()
	return eval[[]string](t, tab, `Array.from(document.querySelectorAll("th, .pill, dt, label, summary")).filter(e => {
		const text = Array.from(e.childNodes).find(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
		if (!text) return false;
		const r = document.createRange();
		r.selectNodeContents(text);
		return new Set(Array.from(r.getClientRects()).filter(b => b.width > 0).map(b => Math.round(b.top))).size > 1;
	}).map(e => e.textContent.trim())`)
}

// rowCaseIDs returns the ids in the first column of the cases table.
func rowCaseIDs(t *testing.T, tab context.Context) []string {
	t.Helper()
	return texts(t, tab, "table.cases tbody tr td:first-child")
}

// caseRefs are the ids of the fixture cases keys as the list shows them.
func caseRefs(ids map[string]int64, keys ...string) []string {
	out := []string{}
	for _, k := range keys {
		out = append(out, "#"+itoa(ids[k]))
	}
	return out
}

func TestBrowser(t *testing.T) {
	t.Parallel()
	browser := startBrowser(t, 1440, 900)
	// Shell cases are isolated by one playbook and refused termination by
	// another, each noted by the responder; the hostile case gets hostile
	// notes and a hostile run.
	e := newActivityEnv(t, isolateShellPlaybook+terminateShellPlaybook)
	ids := seedCases(t, e, append(slices.Clone(analystCases), hostileCase))
	seedHostileActivity(t, e, ids["hostile"])
	base := localhostURL(t, e)
	newest := caseRefs(ids, "hostile", "privileged", "shell2", "etc", "pkgmgmt", "netcat", "apiserver", "miner", "dropexec", "shadow", "shell")

	t.Run("the cases page renders", func(t *testing.T) {
		tab := newTab(t, browser)
		navigate(t, tab, base+"/", http.StatusOK)
		if got := rowCaseIDs(t, tab); !slices.Equal(got, newest) {
			t.Errorf("rows %v, want %v", got, newest)
		}
		heads := texts(t, tab, "table.cases thead th")
		wantHeads := []string{"ID", "Severity", "Status", "Rule", "Namespace / pod", "Image", "Node", "First seen", "Last seen", "Artifacts"}
		if !slices.Equal(heads, wantHeads) {
			t.Errorf("columns %q, want %q", heads, wantHeads)
		}
		if got := texts(t, tab, ".pagehead .count"); !slices.Equal(got, []string{"11 cases"}) {
			t.Errorf("count %q, want [11 cases]", got)
		}
		// Labels do not wrap: the text of every header, pill and field
		// label is on one line.
		if wrapped := wrappedLabels(t, tab); len(wrapped) != 0 {
			t.Errorf("labels that wrap: %q", wrapped)
		}
	})

	t.Run("filters and the search narrow the rows", func(t *testing.T) {
		tab := newTab(t, browser)
		navigate(t, tab, base+"/", http.StatusOK)
		submit(t, tab, http.StatusOK,
			chromedp.SetValue(chromedp.CSS(`select[name=severity]`), "high"),
			chromedp.Click(chromedp.CSS(`form.filters button`)))
		if got, want := rowCaseIDs(t, tab), caseRefs(ids, "hostile", "miner", "dropexec"); !slices.Equal(got, want) {
			t.Errorf("severity high: rows %v, want %v", got, want)
		}
		if got := eval[string](t, tab, `location.search`); got != "?severity=high&status=&rule=&namespace=&q=" {
			t.Errorf("the form sent %q", got)
		}
		// The search applies on top of the severity the form still holds.
		submit(t, tab, http.StatusOK,
			chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "stratum"),
			chromedp.Click(chromedp.CSS(`form.filters button`)))
		if got, want := rowCaseIDs(t, tab), caseRefs(ids, "miner"); !slices.Equal(got, want) {
			t.Errorf("severity high, search stratum: rows %v, want %v", got, want)
		}
		if got := texts(t, tab, ".pagehead .count"); !slices.Equal(got, []string{"1 case matches the filters"}) {
			t.Errorf("count %q", got)
		}
		submit(t, tab, http.StatusOK, chromedp.Click(chromedp.CSS(`a.clear`)))
		if got := rowCaseIDs(t, tab); !slices.Equal(got, newest) {
			t.Errorf("after clearing: rows %v, want all", got)
		}
		submit(t, tab, http.StatusOK,
			chromedp.SetValue(chromedp.CSS(`select[name=namespace]`), "payments"),
			chromedp.SetValue(chromedp.CSS(`select[name=rule]`), "Terminal shell in container"),
			chromedp.Click(chromedp.CSS(`form.filters button`)))
		if got, want := rowCaseIDs(t, tab), caseRefs(ids, "shell2"); !slices.Equal(got, want) {
			t.Errorf("namespace payments, rule shell: rows %v, want %v", got, want)
		}
	})

	t.Run("paging moves", func(t *testing.T) {
		tab := newTab(t, browser)
		navigate(t, tab, base+"/?page_size=4", http.StatusOK)
		if got := rowCaseIDs(t, tab); !slices.Equal(got, newest[:4]) {
			t.Errorf("page 1: rows %v, want %v", got, newest[:4])
		}
		submit(t, tab, http.StatusOK, chromedp.Click(chromedp.CSS(`a[rel=next]`)))
		if got := rowCaseIDs(t, tab); !slices.Equal(got, newest[4:8]) {
			t.Errorf("page 2: rows %v, want %v", got, newest[4:8])
		}
		submit(t, tab, http.StatusOK, chromedp.Click(chromedp.CSS(`a[rel=next]`)))
		if got := rowCaseIDs(t, tab); !slices.Equal(got, newest[8:]) {
			t.Errorf("page 3: rows %v, want %v", got, newest[8:])
		}
		if got := texts(t, tab, ".pager"); len(got) != 1 || !strings.Contains(got[0], "Page 3 of 3") || !strings.Contains(got[0], "Cases 9–11 of 11") {
			t.Errorf("pager %q", got)
		}
		if n := eval[int](t, tab, `document.querySelectorAll("a[rel=next]").length`); n != 0 {
			t.Errorf("the last page links to a next one")
		}
		submit(t, tab, http.StatusOK, chromedp.Click(chromedp.CSS(`a[rel=prev]`)))
		if got := rowCaseIDs(t, tab); !slices.Equal(got, newest[4:8]) {
			t.Errorf("back on page 2: rows %v, want %v", got, newest[4:8])
		}
	})

	t.Run("the case page shows the timeline and the CEF fields", func(t *testing.T) {
		tab := newTab(t, browser)
		navigate(t, tab, base+"/", http.StatusOK)
		submit(t, tab, http.StatusOK, chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href="container/%d"]`, ids["miner"]))))
		if got := eval[int](t, tab, `document.querySelectorAll("svg.timeline circle.mark").length`); got != 5 {
			t.Errorf("timeline has %d marks, want 5, one per artifact", got)
		}
		// The marks go left to right in time, and say what happened.
		xs := eval[[]float64](t, tab, `Array.from(document.querySelectorAll("svg.timeline circle.mark"), c => c.getBoundingClientRect().x)`)
		if !slices.IsSorted(xs) || xs[0] == xs[len(xs)-1] {
			t.Errorf("marks at x %v, want them spread left to right", xs)
		}
		tips := texts(t, tab, "svg.timeline circle.mark title")
		if len(tips) != 5 || !strings.Contains(tips[0], "command: xmrig -o stratum+tcp://pool.example.net:3333") || !strings.Contains(tips[0], "user: 1001") {
			t.Errorf("first mark's tooltip %q lacks the command line and user", tips)
		}
		facts := texts(t, tab, "dl.facts dd")
		for _, want := range []string{"batch", "report-runner-28871440-7xk2d", "python:3.12-slim", "worker-3"} {
			if !slices.Contains(facts, want) {
				t.Errorf("header facts %q lack %q", facts, want)
			}
		}
		if got := eval[int](t, tab, `document.querySelectorAll("table.alerts tbody tr").length`); got != 5 {
			t.Errorf("alerts table has %d rows, want 5", got)
		}
		keys := texts(t, tab, "details.artifact[open] table.cef td.key code")
		for _, want := range []string{"falcoRule", "kubernetesPodName", "commandLine", "containerImage", "userId", "falcoEventId"} {
			if !slices.Contains(keys, want) {
				t.Errorf("CEF table lacks %s; has %q", want, keys)
			}
		}
		// A mark links to its alert's CEF table, which opens.
		href := eval[string](t, tab, `document.querySelectorAll("svg.timeline a")[4].getAttribute("href")`)
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`svg.timeline a:last-of-type circle`))); err != nil {
			t.Fatal(err)
		}
		if got := eval[string](t, tab, `location.hash`); got != href {
			t.Errorf("clicking the last mark went to %q, want %q", got, href)
		}
		if !eval[bool](t, tab, `document.querySelector(location.hash).closest("details").open`) {
			t.Errorf("the alert's CEF table did not open")
		}
		if wrapped := wrappedLabels(t, tab); len(wrapped) != 0 {
			t.Errorf("labels that wrap: %q", wrapped)
		}
	})

	t.Run("the case page shows the actions and notes", func(t *testing.T) {
		tab := newTab(t, browser)
		navigate(t, tab, base+"/", http.StatusOK)
		shellRow := fmt.Sprintf(`table.cases tbody tr:has(a[href="container/%d"])`, ids["shell"])
		if got := texts(t, tab, shellRow+" .runs .tag"); !slices.Equal(got, []string{"isolate: success", "terminate: failed"}) {
			t.Errorf("the shell case's row tags %q, want isolate: success, terminate: failed", got)
		}
		if got := texts(t, tab, fmt.Sprintf(`table.cases tbody tr:has(a[href="container/%d"]) .runs`, ids["miner"])); len(got) != 0 {
			t.Errorf("a case without runs has tags %q", got)
		}
		submit(t, tab, http.StatusOK, chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href="container/%d"]`, ids["shell"]))))

		// One lane per kind, top to bottom, each mark inside its own.
		if got := texts(t, tab, "svg.timeline .lane-label"); !slices.Equal(got, []string{"alerts", "actions", "notes"}) {
			t.Errorf("lanes %q, want alerts, actions, notes", got)
		}
		lanes := eval[[]string](t, tab, `(() => {
			const lanes = Array.from(document.querySelectorAll("svg.timeline rect.lane"), r => r.getBoundingClientRect());
			const names = Array.from(document.querySelectorAll("svg.timeline .lane-label"), l => l.textContent);
			return Array.from(document.querySelectorAll("svg.timeline .mark"), m => {
				const b = m.getBoundingClientRect(), y = b.top + b.height / 2;
				const i = lanes.findIndex(l => y > l.top && y < l.bottom);
				return m.dataset.kind + " " + m.tagName + " in " + (i < 0 ? "no lane" : names[i]);
			});
		})()`)
		want := []string{"alert circle in alerts", "action rect in actions", "note polygon in notes", "action rect in actions",
			"note polygon in notes", "alert circle in alerts", "alert circle in alerts", "alert circle in alerts"}
		if !slices.Equal(lanes, want) {
			t.Errorf("marks %q, want %q", lanes, want)
		}
		// The tooltips say what was done and how it ended.
		tips := texts(t, tab, `svg.timeline .mark[data-kind=action] title`)
		if len(tips) != 2 || !strings.HasPrefix(tips[0], "isolate: success\nplaybook: isolate-shell\nmessage: pod shop/checkout-7d9f8b6c4-x2k9p isolated") ||
			!strings.HasPrefix(tips[1], "terminate: failed\nplaybook: terminate-shell\nmessage: the responder answered 403 action_not_allowed") ||
			!strings.Contains(tips[0], " → 2026-11-30 09:00:01.") {
			t.Errorf("run tooltips %q", tips)
		}
		if tips := texts(t, tab, `svg.timeline .mark[data-kind=note] title`); len(tips) != 2 ||
			!strings.HasSuffix(tips[0], "\nfalco-phantom isolate shop/checkout-7d9f8b6c4-x2k9p: done") ||
			!strings.HasSuffix(tips[1], "\nfalco-phantom terminate shop/checkout-7d9f8b6c4-x2k9p: refused") {
			t.Errorf("note tooltips %q", tips)
		}
		// The Activity section lists them in time order.
		if got := texts(t, tab, "table.activity > tbody > tr > td:nth-child(2)"); !slices.Equal(got, []string{"action", "note", "action", "note"}) {
			t.Errorf("activity kinds %q, want action, note, action, note", got)
		}
		times := texts(t, tab, "table.activity > tbody > tr > td.time")
		if !slices.IsSorted(times) || len(times) != 4 {
			t.Errorf("activity times %q, want 4 in order", times)
		}
		what := texts(t, tab, "table.activity > tbody > tr > td.what")
		for i, want := range [][]string{
			{"isolate", "success", "playbook isolate-shell", "isolated: labelled falco-phantom.io/isolated=", "ms"},
			{"falco-phantom isolate shop/checkout-7d9f8b6c4-x2k9p: done", "isolate of pod shop/checkout-7d9f8b6c4-x2k9p: done in 32 ms", "reason", "Terminal shell in container"},
			{"terminate", "failed", "playbook terminate-shell", "action terminate is not allowed"},
			{"falco-phantom terminate shop/checkout-7d9f8b6c4-x2k9p: refused", "action_not_allowed"},
		} {
			for _, w := range want {
				if i >= len(what) || !strings.Contains(what[i], w) {
					t.Errorf("activity row %d lacks %q: %q", i+1, w, what)
				}
			}
		}
		// The note's markdown is read: bold, code and a table of facts.
		if got := texts(t, tab, "table.activity .md strong"); !slices.Contains(got, "done") {
			t.Errorf("bold words of the notes %q lack done", got)
		}
		if got := texts(t, tab, "table.activity .md-table td:first-child"); !slices.Contains(got, "reason") || !slices.Contains(got, "request") {
			t.Errorf("the notes' tables have the keys %q", got)
		}
		// A mark leads to its row.
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`svg.timeline .mark[data-kind=action]`))); err != nil {
			t.Fatal(err)
		}
		if got := eval[string](t, tab, `location.hash + " " + document.querySelector(":target").textContent`); !strings.HasPrefix(got, "#run-") ||
			!strings.Contains(got, "isolate") {
			t.Errorf("clicking the run's mark went to %q, want its row", got)
		}
		if wrapped := wrappedLabels(t, tab); len(wrapped) != 0 {
			t.Errorf("labels that wrap: %q", wrapped)
		}
		if w := eval[float64](t, tab, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); w > 0 {
			t.Errorf("the page is %v px wider than the window", w)
		}
	})

	t.Run("the form changes the status and owner", func(t *testing.T) {
		tab := newTab(t, browser)
		id := ids["dropexec"]
		navigate(t, tab, base+"/container/"+itoa(id), http.StatusOK)
		submit(t, tab, http.StatusOK,
			chromedp.SetValue(chromedp.CSS(`select[name=status]`), "closed"),
			chromedp.SendKeys(chromedp.CSS(`input[name=owner]`), "carol"),
			chromedp.Click(chromedp.CSS(`form.case-form button`)))
		if got := eval[string](t, tab, `location.pathname + location.search`); got != "/container/"+itoa(id)+"?saved=1" {
			t.Errorf("after saving, the page is %s", got)
		}
		if got := texts(t, tab, ".casehead .title .pill"); !slices.Equal(got, []string{"high", "closed"}) {
			t.Errorf("pills %q, want high, closed", got)
		}
		c := e.do(http.MethodGet, "/rest/container/"+itoa(id), nil, asAdmin).decode(t)
		if c["status"] != "closed" || c["owner_id"] != "carol" {
			t.Errorf("over REST: status %v, owner_id %v; want closed, carol", c["status"], c["owner_id"])
		}
	})

	t.Run("another site's form is refused", func(t *testing.T) {
		id := ids["netcat"]
		token := formTokenOf(t, e, id) // even with the token, which a real attacker lacks
		attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/container/%d">
				<input type="hidden" name="csrf" value="%s"><input type="hidden" name="status" value="closed">
				<button>win a prize</button></form>`, base, id, token)
		}))
		t.Cleanup(attacker.Close)
		tab := newTab(t, browser)
		navigate(t, tab, attacker.URL, http.StatusOK) // 127.0.0.1: another site than localhost
		submit(t, tab, http.StatusForbidden, chromedp.Click(chromedp.CSS(`button`)))
		if got := e.do(http.MethodGet, "/rest/container/"+itoa(id), nil, asAdmin).decode(t)["status"]; got != "new" {
			t.Errorf("a cross-site form changed the status to %v", got)
		}
	})

	t.Run("hostile values stay inert text", func(t *testing.T) {
		tab := newTab(t, browser)
		// An alert would block the page: dismiss it, and count it.
		var opened atomic.Int32
		dialogs := chromedp.Events(tab, page.JavascriptDialogOpening)
		go func() {
			for _, err := range dialogs {
				if err != nil {
					return // the tab is closed
				}
				opened.Add(1)
				_, _ = chromedp.Call(tab, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}
		}()
		for _, path := range []string{"/", "/container/" + itoa(ids["hostile"]), "/?q=" + url.QueryEscape(`"><img src=x onerror=alert(9)>`)} {
			navigate(t, tab, base+path, http.StatusOK)
			if got := eval[string](t, tab, `document.title`); strings.Contains(got, "pwned") {
				t.Errorf("%s: a hostile script ran: title %q", path, got)
			}
			// Markup from the data created no element.
			n := eval[int](t, tab, `document.querySelectorAll("script, img, iframe, b, i, svg:not(.timeline), [onerror], [onload]").length`)
			if n != 0 {
				t.Errorf("%s: the data created %d elements", path, n)
			}
		}
		// The case page shows the values as text, escapes and all.
		navigate(t, tab, base+"/container/"+itoa(ids["hostile"]), http.StatusOK)
		body := eval[string](t, tab, `document.body.innerText`)
		for _, want := range []string{
			`<img src=x onerror="document.title='pwned';alert(1)">`,
			`web-<script>document.title="pwned";alert(2)</script>`,
			`sh -c "<script>alert(4)</script>" \x1b[31mred\x1b[0m \u202etxt.exe`,
			`node-\u202eevil`, "<svg onload=alert(3)>", "/tmp/<i>x</i>",
			// Its activity.
			`<img src=x onerror="document.title='pwned';alert(10)">\u202e`,
			"<script>document.title='pwned';alert(11)</script> <iframe src=x>", "<svg onload=alert(12)>", `\x1b[31m | <i>x</i>`,
			"<i>act</i>", "playbook <b>pb</b>", `<img src=y onerror=alert(13)> \u2066bidi\x07`,
			`<img src=z onerror="alert(14)"><p style="position:fixed;inset:0">cover</p>`, "WWWW…",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("case page does not show %q as text", want)
			}
		}
		// The long command line wraps within the page instead of widening it.
		if w := eval[float64](t, tab, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); w > 0 {
			t.Errorf("the page is %v px wider than the window", w)
		}
		if n := opened.Load(); n != 0 {
			t.Errorf("%d dialogs opened", n)
		}
	})

	t.Run("the pages work without JavaScript", func(t *testing.T) {
		tab := newTab(t, browser)
		if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		navigate(t, tab, base+"/?severity=medium", http.StatusOK)
		if got, want := rowCaseIDs(t, tab), caseRefs(ids, "etc", "pkgmgmt", "netcat", "shadow"); !slices.Equal(got, want) {
			t.Errorf("rows %v, want %v", got, want)
		}
		id := ids["etc"]
		navigate(t, tab, base+"/container/"+itoa(id), http.StatusOK)
		submit(t, tab, http.StatusOK,
			chromedp.SetValue(chromedp.CSS(`select[name=status]`), "open"),
			chromedp.Click(chromedp.CSS(`form.case-form button`)))
		if got := e.do(http.MethodGet, "/rest/container/"+itoa(id), nil, asAdmin).decode(t)["status"]; got != "open" {
			t.Errorf("status %v after the form, want open", got)
		}
	})
}

// TestScreenshots writes the screenshots of docs/images with -screenshots:
//
//	go test ./mockphantom -run TestScreenshots -screenshots
func TestScreenshots(t *testing.T) {
	if !*writeScreenshots {
		t.Skip("writes docs/images/mock-soar-*.png only with -screenshots")
	}
	const width, height = 1440, 900
	browser := startBrowser(t, width, height)
	// The shell cases are isolated by a playbook as they are opened; the
	// responder notes it into each.
	e := newActivityEnv(t, isolateShellPlaybook)
	ids := seedCases(t, e, analystCases)
	base := localhostURL(t, e)
	tab := newTab(t, browser)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatal(err)
	}
	for _, shot := range []struct{ path, file, until string }{
		{"/", "mock-soar-cases.png", ""},
		// The case down to its Activity section: the playbook's run and the
		// responder's note.
		{"/container/" + itoa(ids["shell"]), "mock-soar-case.png", "#activity"},
	} {
		navigate(t, tab, base+shot.path, http.StatusOK)
		h := int64(height)
		if shot.until != "" {
			h = max(h, int64(eval[float64](t, tab, fmt.Sprintf(`document.querySelector(%q).getBoundingClientRect().bottom + 24`, shot.until))))
		}
		if err := chromedp.Do(tab, chromedp.EmulateViewport(width, h)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join("..", "docs", "images", shot.file)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, len(png))
	}
}
