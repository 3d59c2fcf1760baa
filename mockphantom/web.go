package mockphantom

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// The web page: a list of cases (web_cases.go) and a page per case
// (web_case.go) with its timeline (timeline.go), rendered on the server
// from templates/. It works without JavaScript, and its Content-Security-
// Policy allows none: filters are links and GET forms, the one change it
// makes is a POST form guarded against cross-site requests.

//go:embed templates/*.html
var templateFS embed.FS

// Limits of the web page. Values are cut for display only; REST returns
// them whole.
const (
	listPageSize     = 25  // cases per page of the list, by default
	listMaxPageSize  = 200 // the most a page_size parameter may ask for
	listCommands     = 20  // distinct command lines per case in the list
	listOptions      = 200 // values offered per filter
	shortValueRunes  = 120 // one value in the list
	longValueRunes   = 2000
	tooltipRunes     = 300 // one value in a timeline mark's tooltip
	searchRunes      = 200 // the search text
	filterValueBytes = 512 // a rule or namespace that a filter may name
	caseArtifacts    = 1000
	prettyBlockRunes = 64 << 10
	refreshSeconds   = 5
)

// CEF keys of forwarded Falco events (see pkg/forwarder's mapping).
const (
	cefNamespace     = "kubernetesNamespace"
	cefPod           = "kubernetesPodName"
	cefContainerID   = "containerId"
	cefContainerName = "containerName"
	cefImage         = "containerImage"
	cefProcess       = "processName"
	cefParent        = "parentProcessName"
	cefCommand       = "commandLine"
	cefUser          = "userName"
	cefFile          = "fileName"
	cefNode          = "sourceHostName"
	cefRule          = "falcoRule"
	cefPriority      = "falcoPriority"
)

// cefLabels names the CEF keys the forwarder sends, in the order of a
// case page's CEF tables; other keys follow in alphabetical order.
var cefLabels = []struct{ key, label string }{
	{cefRule, "rule"},
	{cefPriority, "priority"},
	{"eventTime", "event time"},
	{"eventType", "event type"},
	{cefNamespace, "namespace"},
	{cefPod, "pod"},
	{cefContainerName, "container"},
	{cefContainerID, "container id"},
	{cefImage, "image"},
	{cefNode, "node"},
	{cefProcess, "process"},
	{cefParent, "parent process"},
	{"processPath", "process path"},
	{cefCommand, "command line"},
	{"terminal", "terminal"},
	{cefUser, "user"},
	{"userId", "user id"},
	{cefFile, "file"},
	{"falcoSource", "source"},
	{"falcoEventId", "event id"},
	{"falcoOutput", "output"},
}

// searchKeys are the CEF keys the list's search looks into, besides the
// case's name.
var searchKeys = []string{cefRule, cefNamespace, cefPod, cefContainerName, cefImage, cefNode, cefCommand, cefFile}

// contentSecurityPolicy allows the inline style and forms that post to the
// server itself, and nothing else: no scripts, no requests elsewhere.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

func parsePages() (*template.Template, error) {
	t, err := template.New("pages").Funcs(template.FuncMap{
		"plural": plural,
		"num":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("failed to parse page templates: %w", err)
	}
	return t, nil
}

// pageChrome is what every page shows around its content.
type pageChrome struct {
	Title   string
	Version string
	Refresh int    // seconds; 0 for no automatic reload
	LiveURL string // the same page with the reload switched the other way
}

// chrome returns the frame of a page at r; live pages reload themselves.
func chrome(r *http.Request, title string) pageChrome {
	q := r.URL.Query()
	c := pageChrome{Title: title, Version: Version}
	if q.Get("live") == "1" {
		c.Refresh = refreshSeconds
		q.Del("live")
	} else {
		q.Set("live", "1")
	}
	q.Del("saved")
	c.LiveURL = "?" + q.Encode()
	return c
}

// renderPage writes a page with the headers every page carries.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.ErrorContext(r.Context(), "failed to render page", "page", name, "err", err)
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// messagePage is a short page that says what went wrong.
type messagePage struct {
	pageChrome
	Heading, Message string
	Back             string // a link back, relative to the page
}

func (s *Server) renderMessage(w http.ResponseWriter, r *http.Request, status int, msg, back string) {
	p := messagePage{pageChrome: chrome(r, http.StatusText(status)), Heading: http.StatusText(status),
		Message: clip(msg, longValueRunes, true), Back: back}
	p.LiveURL = ""
	s.renderPage(w, r, status, "message.html", p)
}

// plural writes "1 case", "2 cases".
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatInt(n, 10) + " " + many
}

// sevClass is the style class of a severity.
func sevClass(sev string) string {
	switch sev {
	case "high", "medium", "low":
		return sev
	}
	return "other"
}

// statusClass is the style class of a status.
func statusClass(status string) string {
	switch status {
	case "new", "open", "closed":
		return status
	}
	return "other"
}

// pageTime is a stored time as the page shows it.
type pageTime struct {
	Short       string // to the second
	Full        string // to the millisecond, with the zone
	Date, Clock string // the two halves of Short
}

func displayTime(s string) pageTime {
	if s == "" {
		return pageTime{Short: "-", Full: "-", Clock: "-"}
	}
	t, err := time.Parse(store.TimeLayout, s)
	if err != nil {
		c := clip(s, 40, false)
		return pageTime{Short: c, Full: c, Clock: c}
	}
	return pageTime{Short: t.Format(time.DateTime), Full: t.Format("2006-01-02 15:04:05.000Z"),
		Date: t.Format(time.DateOnly), Clock: t.Format(time.TimeOnly)}
}

func parseStoredTime(s string) (time.Time, bool) {
	t, err := time.Parse(store.TimeLayout, s)
	return t, err == nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ownerName is how the form shows an owner_id: a user name as it is, a
// user id as its digits, nothing when unassigned.
func ownerName(raw json.RawMessage) string {
	if isNull(raw) {
		return ""
	}
	return cefValue(raw)
}

// ownerLabel is how a page names an owner: a user id as "#7".
func ownerLabel(raw json.RawMessage, limit int) string {
	name := ownerName(raw)
	switch {
	case name == "":
		return ""
	case raw[0] != '"':
		return "#" + clip(name, limit, false)
	}
	return clip(name, limit, false)
}

// cefValue renders one CEF value: strings as they are, anything else as
// JSON text; "" when absent or null.
func cefValue(raw json.RawMessage) string {
	if isNull(raw) {
		return ""
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func compactJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

func prettyJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return clip(string(raw), prettyBlockRunes, true)
	}
	return clip(buf.String(), prettyBlockRunes, true)
}

// option is one choice of a filter's select.
type option struct {
	Value, Label string
	Selected     bool
}

// formSelect is a select of a form.
type formSelect struct {
	Label, Name string
	Any         bool // offers "any" (the value "") first
	Options     []option
}

// options lists values as choices with current selected; a current value
// missing from values is added, so that the form shows what is applied.
func options(values []string, current string) []option {
	out := make([]option, 0, len(values)+1)
	found := current == ""
	for _, v := range values {
		if !plainText(v) || len(v) > filterValueBytes {
			continue // cannot be shown as it is; the search still finds it
		}
		out = append(out, option{Value: v, Label: clip(v, 60, false), Selected: v == current})
		found = found || v == current
	}
	if !found {
		out = append(out, option{Value: current, Label: clip(current, 60, false), Selected: true})
	}
	return out
}

// relURL is a link to the current page with the parameters v.
func relURL(v url.Values) string {
	if len(v) == 0 {
		return "./"
	}
	return "?" + v.Encode()
}

// clip prepares untrusted text for display: "-" when empty, at most limit
// runes (then an ellipsis), and control and bidirectional-override
// characters shown as escapes so that they can neither hide nor reorder
// text. Newlines and tabs are kept when multiline is set. HTML escaping is
// left to html/template.
func clip(s string, limit int, multiline bool) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	var b strings.Builder
	n := 0
	for i, r := range s {
		if n == limit {
			b.WriteString("…")
			break
		}
		n++
		switch {
		case multiline && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == utf8.RuneError && isInvalidAt(s, i):
			b.WriteString(`\ufffd`)
		case unicode.IsControl(r) || isFormatChar(r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// plainText reports whether s can be shown as it is: valid UTF-8 without
// the characters clip escapes.
func plainText(s string) bool {
	for i, r := range s {
		if (r == utf8.RuneError && isInvalidAt(s, i)) || unicode.IsControl(r) || isFormatChar(r) {
			return false
		}
	}
	return true
}

// stripHidden drops the characters clip would escape; what is left can be
// echoed into a form field as it is.
func stripHidden(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || isFormatChar(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

func isInvalidAt(s string, i int) bool {
	r, size := utf8.DecodeRuneInString(s[i:])
	return r == utf8.RuneError && size <= 1
}

// isFormatChar reports invisible format characters (Unicode class Cf),
// among them the bidirectional overrides that reorder text (the "Trojan
// Source" trick).
func isFormatChar(r rune) bool {
	return unicode.Is(unicode.Cf, r)
}
