package mockphantom

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

// Limits of the web page. Values are cut for display only; REST returns
// them whole.
const (
	pageCases          = 50   // cases on the index page
	pageTimeline       = 25   // artifacts per case on the index page
	pageDetailLimit    = 1000 // artifacts on a case page
	shortValueRunes    = 160  // one value on the index page
	longValueRunes     = 2000 // one value on a case page
	prettyBlockRunes   = 64 << 10
	pageRefreshSeconds = 5
)

// cefField names a CEF key the forwarder sends and how the page labels it.
type cefField struct {
	key, label string
	timeline   bool // shown on the index page's timeline as well
}

// cefFields are the CEF keys of forwarded Falco events, in display order.
var cefFields = []cefField{
	{"kubernetesPodName", "pod", true},
	{"kubernetesNamespace", "namespace", true},
	{"containerName", "container", true},
	{"commandLine", "command line", true},
	{"userName", "user", true},
	{"processName", "process", true},
	{"parentProcessName", "parent process", false},
	{"containerId", "container id", false},
	{"containerImage", "image", false},
	{"sourceHostName", "node", false},
	{"falcoRule", "Falco rule", false},
	{"falcoPriority", "Falco priority", false},
}

func parsePages() (*template.Template, error) {
	t, err := template.New("pages").ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("failed to parse page templates: %w", err)
	}
	return t, nil
}

// Page models. Every string in them is already cut and cleaned by clip;
// html/template escapes them on output.
type (
	pageIndex struct {
		Total   int64
		Cases   []pageCase
		Version string
		Refresh int
	}
	pageDetail struct {
		Case      pageCase
		Shown     int
		Version   string
		Refresh   int
		Truncated bool
	}
	pageCase struct {
		ID                                                     int64
		Name, Label, Severity, SevClass, Status, Sensitivity   string
		Description, StartTime, EndTime, CreateTime, SDI, Tags string
		Data, CustomFields                                     string
		ArtifactCount, More                                    int64
		Artifacts                                              []pageArtifact
	}
	pageArtifact struct {
		ID                               int64
		Time, Name, Label, Severity, SDI string
		Type                             string
		Fields                           []pageField
		CEF, CEFTypes, Data              string
	}
	pageField struct{ Label, Value string }
)

// indexPage handles GET /: the newest cases with their artifacts.
func (s *Server) indexPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	total, cases, err := s.store.ListContainers(ctx, store.Query{Desc: true, PageSize: pageCases})
	if err != nil {
		s.internalError(w, r, "index page", err)
		return
	}
	page := pageIndex{Total: total, Version: Version, Refresh: pageRefreshSeconds}
	for _, c := range cases {
		aq := store.Query{Sort: "start_time", PageSize: pageTimeline, Container: c.ID}
		_, arts, err := s.store.ListArtifacts(ctx, aq)
		if err != nil {
			s.internalError(w, r, "index page", err)
			return
		}
		pc := makePageCase(c, shortValueRunes, false)
		pc.More = c.ArtifactCount - int64(len(arts))
		for _, a := range arts {
			pc.Artifacts = append(pc.Artifacts, makePageArtifact(a, shortValueRunes, false))
		}
		page.Cases = append(page.Cases, pc)
	}
	s.renderPage(w, r, "index.html", page)
}

// containerPage handles GET /container/N: one case with all artifacts,
// their full CEF and raw data.
func (s *Server) containerPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		http.Error(w, "no such case", http.StatusNotFound)
		return
	}
	c, found, err := s.store.Container(r.Context(), id)
	if err != nil {
		s.internalError(w, r, "case page", err)
		return
	}
	if !found {
		http.Error(w, fmt.Sprintf("case %d does not exist", id), http.StatusNotFound)
		return
	}
	aq := store.Query{Sort: "start_time", PageSize: pageDetailLimit, Container: id}
	_, arts, err := s.store.ListArtifacts(r.Context(), aq)
	if err != nil {
		s.internalError(w, r, "case page", err)
		return
	}
	page := pageDetail{Case: makePageCase(c, longValueRunes, true), Shown: len(arts),
		Version: Version, Refresh: pageRefreshSeconds, Truncated: int64(len(arts)) < c.ArtifactCount}
	for _, a := range arts {
		page.Case.Artifacts = append(page.Case.Artifacts, makePageArtifact(a, longValueRunes, true))
	}
	s.renderPage(w, r, "container.html", page)
}

func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.ErrorContext(r.Context(), "failed to render page", "page", name, "err", err)
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// No scripts, no external anything: only the inline style may apply.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

func makePageCase(c store.Container, limit int, detail bool) pageCase {
	pc := pageCase{
		ID:            c.ID,
		Name:          clip(c.Name, limit, false),
		Label:         clip(c.Label, limit, false),
		Severity:      clip(c.Severity, limit, false),
		SevClass:      severityClass(c.Severity),
		Status:        clip(c.Status, limit, false),
		Sensitivity:   clip(c.Sensitivity, limit, false),
		Description:   clip(c.Description, limit, detail),
		StartTime:     displayTime(c.StartTime),
		EndTime:       displayTime(c.EndTime),
		CreateTime:    displayTime(&c.CreateTime),
		SDI:           clip(deref(c.SourceDataIdentifier), limit, false),
		ArtifactCount: c.ArtifactCount,
	}
	if detail {
		pc.Tags = clip(compactJSON(c.Tags), limit, false)
		pc.Data = prettyJSON(c.Data)
		pc.CustomFields = prettyJSON(c.CustomFields)
	}
	return pc
}

func makePageArtifact(a store.Artifact, limit int, detail bool) pageArtifact {
	pa := pageArtifact{
		ID:       a.ID,
		Time:     displayTime(a.StartTime),
		Name:     clip(a.Name, limit, false),
		Label:    clip(a.Label, limit, false),
		Severity: clip(a.Severity, limit, false),
		SDI:      clip(deref(a.SourceDataIdentifier), limit, false),
		Type:     clip(deref(a.Type), limit, false),
	}
	var cef map[string]json.RawMessage
	_ = json.Unmarshal(a.CEF, &cef) // stored CEF is always an object
	for _, f := range cefFields {
		if detail || f.timeline {
			pa.Fields = append(pa.Fields, pageField{Label: f.label, Value: clip(cefValue(cef[f.key]), limit, false)})
		}
	}
	if detail {
		pa.CEF = prettyJSON(a.CEF)
		pa.CEFTypes = prettyJSON(a.CEFTypes)
		pa.Data = prettyJSON(a.Data)
	}
	return pa
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

func severityClass(sev string) string {
	switch sev {
	case "high", "medium", "low":
		return sev
	}
	return "other"
}

func displayTime(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	t, err := time.Parse(store.TimeLayout, *s)
	if err != nil {
		return clip(*s, 40, false)
	}
	return t.Format("2006-01-02 15:04:05.000Z")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
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
