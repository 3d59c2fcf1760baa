package mockphantom

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// Page model of a case. Every string is already cut and cleaned by clip;
// html/template escapes them on output.
type (
	casePage struct {
		pageChrome
		Case      caseHeader
		Timeline  timelineView
		HasMarks  bool
		Alerts    []alertRow
		Shown     int
		Truncated bool
		Form      caseForm
		Saved     bool
		SameRule  bool // every alert has the case's rule
		ListHref  string

		// Activity holds the case's action runs and notes; ActivityTotal
		// counts them, of which only the first caseActivity are shown.
		Activity      []activityRow
		ActivityTotal int
	}
	caseHeader struct {
		ID                                       int64
		Name, Description                        string
		Severity, SevClass, Status, StatusClass  string
		Owner, Label, Sensitivity, SDI, Tags     string
		Rule, Namespace, Pod, Container, Image   fact
		ContainerID, Node, Priority              fact
		ShowRule                                 bool // the rule is not the name
		FirstSeen, LastSeen, Created, Start, End pageTime
		Artifacts                                int64
		Data, CustomFields                       string
	}
	alertRow struct {
		ID                             int64
		Anchor                         string
		Time                           pageTime
		Name, Severity, SevClass       string
		Process, Parent, Command, User string
		File                           string
		CEF                            []cefRow
		Data, Label, Type, SDI         string
	}
	cefRow   struct{ Key, Label, Value, Types string }
	caseForm struct {
		Action, Token string
		Status        formSelect
		Owner         string
	}
)

// pageID is pathID for the web page: it answers with a page that says so
// when ok is false.
func (s *Server) pageID(w http.ResponseWriter, r *http.Request) (id int64, ok bool) {
	if id, ok = pathID(r); !ok {
		s.renderMessage(w, r, http.StatusNotFound, "There is no case "+strconv.Quote(r.PathValue("id"))+".", "../")
	}
	return id, ok
}

// containerPage handles GET /container/N: the case's facts, its timeline,
// its alerts, what was done about it (action runs and notes), every CEF
// field of each alert, and the form that changes its status and owner.
func (s *Server) containerPage(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pageID(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	c, found, err := s.store.Container(ctx, id)
	if err != nil {
		s.internalError(w, r, "case page", err)
		return
	}
	if !found {
		s.renderMessage(w, r, http.StatusNotFound, fmt.Sprintf("Case %d does not exist.", id), "../")
		return
	}
	_, arts, err := s.store.ListArtifacts(ctx, store.Query{Sort: "start_time", PageSize: caseArtifacts, Container: id})
	if err != nil {
		s.internalError(w, r, "case page", err)
		return
	}
	sums, err := s.store.Summaries(ctx, []int64{id}, store.SummaryQuery{Keys: summaryKeys})
	if err != nil {
		s.internalError(w, r, "case page", err)
		return
	}
	sum := sums[id]
	acts, err := s.store.Activity(ctx, id)
	if err != nil {
		s.internalError(w, r, "case page", err)
		return
	}

	p := casePage{
		pageChrome: chrome(r, fmt.Sprintf("Case %d", id)),
		Case:       makeCaseHeader(c, sum),
		Shown:      len(arts),
		Truncated:  int64(len(arts)) < c.ArtifactCount,
		Saved:      r.URL.Query().Get("saved") == "1",
		ListHref:   "../",
		Form: caseForm{
			Action: strconv.FormatInt(id, 10),
			Token:  s.formToken(id),
			Status: formSelect{Name: "status", Options: options(containerStatuses, c.Status)},
			Owner:  stripHidden(ownerName(c.OwnerID)),
		},
	}
	p.SameRule = p.Case.Rule.Others == 0
	marks := make([]timelineMark, 0, len(arts)+len(acts))
	for _, a := range arts {
		row := makeAlertRow(a)
		p.Alerts = append(p.Alerts, row)
		marks = append(marks, alertMark(a, row))
	}
	var actMarks []timelineMark
	p.Activity, actMarks = makeActivity(acts)
	p.ActivityTotal = len(acts)
	p.Timeline, p.HasMarks = layoutTimeline(append(marks, actMarks...))
	s.renderPage(w, r, http.StatusOK, "container.html", p)
}

func makeCaseHeader(c store.Container, sum store.Summary) caseHeader {
	h := caseHeader{
		ID:           c.ID,
		Name:         clip(c.Name, longValueRunes, false),
		Description:  clip(c.Description, longValueRunes, true),
		Severity:     clip(c.Severity, 20, false),
		SevClass:     sevClass(c.Severity),
		Status:       clip(c.Status, 20, false),
		StatusClass:  statusClass(c.Status),
		Owner:        ownerLabel(c.OwnerID, 80),
		Label:        clip(c.Label, 80, false),
		Sensitivity:  clip(c.Sensitivity, 20, false),
		SDI:          clip(deref(c.SourceDataIdentifier), longValueRunes, false),
		Tags:         clip(compactJSON(c.Tags), longValueRunes, false),
		Rule:         makeFact(sum, cefRule, 200),
		Namespace:    makeFact(sum, cefNamespace, 200),
		Pod:          makeFact(sum, cefPod, 200),
		Container:    makeFact(sum, cefContainerName, 200),
		ContainerID:  makeFact(sum, cefContainerID, 64),
		Image:        makeFact(sum, cefImage, 200),
		Node:         makeFact(sum, cefNode, 200),
		Priority:     makeFact(sum, cefPriority, 40),
		FirstSeen:    displayTime(sum.FirstSeen),
		LastSeen:     displayTime(sum.LastSeen),
		Created:      displayTime(c.CreateTime),
		Start:        displayTime(deref(c.StartTime)),
		End:          displayTime(deref(c.EndTime)),
		Artifacts:    c.ArtifactCount,
		Data:         prettyJSON(c.Data),
		CustomFields: prettyJSON(c.CustomFields),
	}
	h.ShowRule = h.Rule.Value != h.Name || h.Rule.Others > 0
	return h
}

func makeAlertRow(a store.Artifact) alertRow {
	var cef map[string]json.RawMessage
	_ = json.Unmarshal(a.CEF, &cef) // stored CEF is always an object
	var types map[string][]string
	_ = json.Unmarshal(a.CEFTypes, &types) // checked when stored
	value := func(key string) string { return clip(cefValue(cef[key]), longValueRunes, false) }
	row := alertRow{
		ID:       a.ID,
		Anchor:   "cef-" + strconv.FormatInt(a.ID, 10),
		Time:     displayTime(deref(a.StartTime)),
		Name:     clip(a.Name, longValueRunes, false),
		Severity: clip(a.Severity, 20, false),
		SevClass: sevClass(a.Severity),
		Process:  value(cefProcess),
		Parent:   value(cefParent),
		Command:  value(cefCommand),
		User:     value(cefUser),
		File:     value(cefFile),
		Label:    clip(a.Label, 80, false),
		Type:     clip(deref(a.Type), 80, false),
		SDI:      clip(deref(a.SourceDataIdentifier), longValueRunes, false),
		Data:     prettyJSON(a.Data),
	}
	for _, k := range cefKeys(cef) {
		row.CEF = append(row.CEF, cefRow{
			Key: clip(k, 80, false), Label: cefLabel(k), Value: clip(cefValue(cef[k]), longValueRunes, true),
			Types: clip(strings.Join(types[k], ", "), 200, false),
		})
	}
	return row
}

// cefKeys orders the keys of a CEF object: the known ones as cefLabels
// lists them, then the others alphabetically.
func cefKeys(cef map[string]json.RawMessage) []string {
	rank := func(k string) int {
		i := slices.IndexFunc(cefLabels, func(l struct{ key, label string }) bool { return l.key == k })
		if i < 0 {
			return len(cefLabels)
		}
		return i
	}
	keys := make([]string, 0, len(cef))
	for k := range cef {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b)) })
	return keys
}

func cefLabel(key string) string {
	for _, l := range cefLabels {
		if l.key == key {
			return l.label
		}
	}
	return ""
}

// alertMark is the timeline mark of an artifact; its tooltip says what
// the alert's row says.
func alertMark(a store.Artifact, row alertRow) timelineMark {
	m := timelineMark{Kind: markAlert, Href: "#" + row.Anchor, Class: "sev-" + row.SevClass}
	if a.StartTime != nil {
		m.At, _ = parseStoredTime(*a.StartTime)
	}
	lines := []string{fmt.Sprintf("#%d  %s", a.ID, row.Time.Full)}
	for _, l := range []struct{ label, value string }{
		{"process", row.Process}, {"parent", row.Parent}, {"command", row.Command}, {"user", row.User}, {"file", row.File},
	} {
		if l.value != "-" {
			lines = append(lines, l.label+": "+clip(l.value, tooltipRunes, false))
		}
	}
	m.Title = strings.Join(lines, "\n")
	return m
}

// The form of a case page changes the case's status and owner with a
// POST to /container/N. The browser sends the user's credentials with any
// request to this server, including one that another site's page makes,
// so the form carries a token that only this server can compute (an HMAC
// of the case id under a key drawn when the server starts), and requests
// that the browser marks as coming from another origin are refused.

// formToken is the token of case id's form.
func (s *Server) formToken(id int64) string {
	mac := hmac.New(sha256.New, s.formKey)
	fmt.Fprintf(mac, "case-form:%d", id)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (s *Server) validFormToken(id int64, token string) bool {
	want := s.formToken(id)
	return hmac.Equal([]byte(token), []byte(want))
}

// maxFormBytes bounds the body of a form post.
const maxFormBytes = 16 << 10

// errCrossSite refuses form posts from other origins.
var errCrossSite = errors.New("this form may only be sent from the case page of this server")

// checkSameOrigin refuses requests whose Sec-Fetch-Site header (set by
// browsers, not by scripts) says they come from another origin. Clients
// that send no such header (curl, older browsers) rely on the token.
func checkSameOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return nil
	}
	return errCrossSite
}

// caseFormPost handles POST /container/N from the case page's form: the
// fields status and owner (empty for unassigned; digits for a user id),
// checked as POST /rest/container/N checks them. It answers 303 to the
// case page.
func (s *Server) caseFormPost(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pageID(w, r)
	if !ok {
		return
	}
	back := strconv.FormatInt(id, 10)
	if err := checkSameOrigin(r); err != nil {
		s.renderMessage(w, r, http.StatusForbidden, "Refused: "+err.Error()+".", back)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderMessage(w, r, http.StatusBadRequest, "The form could not be read.", back)
		return
	}
	if !s.validFormToken(id, r.PostForm.Get("csrf")) {
		s.renderMessage(w, r, http.StatusForbidden,
			"Refused: the form's token is missing or out of date (the server may have restarted). Reload the case page and try again.", back)
		return
	}
	// The form is a JSON update in other clothes, so that both check the
	// same way.
	update := map[string]any{}
	if r.PostForm.Has("status") {
		update["status"] = r.PostForm.Get("status")
	}
	if r.PostForm.Has("owner") {
		update["owner_id"] = ownerInput(r.PostForm.Get("owner"))
	}
	body, err := json.Marshal(update)
	if err != nil {
		s.internalError(w, r, "case form", err)
		return
	}
	found, err := s.applyUpdate(r.Context(), id, body)
	var ie *inputError
	switch {
	case errors.As(err, &ie):
		s.renderMessage(w, r, http.StatusBadRequest, "Not saved: "+ie.msg+".", back)
	case err != nil:
		s.internalError(w, r, "case form", err)
	case !found:
		s.renderMessage(w, r, http.StatusNotFound, fmt.Sprintf("Case %d does not exist.", id), "../")
	default:
		// Relative, like every link of the page, so that the page works
		// behind a proxy that serves it under a path prefix.
		w.Header().Set("Location", back+"?saved=1")
		w.WriteHeader(http.StatusSeeOther)
	}
}

// ownerInput is the owner_id that the form's owner field stands for: none
// when empty, a user id when it is digits, else a user name.
func ownerInput(s string) any {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n
	}
	return s
}
