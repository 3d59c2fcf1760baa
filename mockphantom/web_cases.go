package mockphantom

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// listFilter is what the list of cases shows, read from the query string:
// severity, status, rule, namespace, q (the search), page (from 1),
// page_size and live.
type listFilter struct {
	Severity, Status, Rule, Namespace, Search string
	Page, PageSize                            int
}

func readListFilter(q url.Values) listFilter {
	f := listFilter{
		Severity:  filterValue(q.Get("severity")),
		Status:    filterValue(q.Get("status")),
		Rule:      filterValue(q.Get("rule")),
		Namespace: filterValue(q.Get("namespace")),
		Search:    stripHidden(q.Get("q")),
		Page:      1,
		PageSize:  listPageSize,
	}
	if n := utf8.RuneCountInString(f.Search); n > searchRunes {
		f.Search = string([]rune(f.Search)[:searchRunes])
	}
	if n, err := strconv.Atoi(q.Get("page_size")); err == nil && n > 0 {
		f.PageSize = min(n, listMaxPageSize)
	}
	// Pages past the last show the last one; this bound only keeps the
	// offset in range.
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		f.Page = min(n, (1<<31)/f.PageSize)
	}
	return f
}

// filterValue keeps a filter value that the page can show as it is, and
// drops others: the lists never offer them (see options), and the search
// still finds them.
func filterValue(v string) string {
	if len(v) > filterValueBytes || !plainText(v) {
		return ""
	}
	return v
}

func (f listFilter) any() bool {
	return f.Severity != "" || f.Status != "" || f.Rule != "" || f.Namespace != "" || f.Search != ""
}

// values is the query string of f on page; live is kept as it was.
func (f listFilter) values(page int, live bool) url.Values {
	v := url.Values{}
	for _, p := range []struct{ key, value string }{
		{"severity", f.Severity}, {"status", f.Status}, {"rule", f.Rule}, {"namespace", f.Namespace}, {"q", f.Search},
	} {
		if p.value != "" {
			v.Set(p.key, p.value)
		}
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if f.PageSize != listPageSize {
		v.Set("page_size", strconv.Itoa(f.PageSize))
	}
	if live {
		v.Set("live", "1")
	}
	return v
}

func (f listFilter) query() store.CaseQuery {
	q := store.CaseQuery{Severity: f.Severity, Status: f.Status, Name: f.Rule,
		Search: f.Search, SearchKeys: searchKeys, Page: f.Page - 1, PageSize: f.PageSize}
	if f.Namespace != "" {
		q.CEF = []store.CEFValue{{Key: cefNamespace, Value: f.Namespace}}
	}
	return q
}

// Page model of the list. Every string is already cut and cleaned by
// clip; html/template escapes them on output.
type (
	listPage struct {
		pageChrome
		Filter         listFilter
		Selects        []formSelect
		Filtered       bool
		CustomPageSize int // 0 for the default
		Total          int64
		First, Last    int64 // the rows shown, counted from 1
		Rows           []caseRow
		Pager          pager
	}
	caseRow struct {
		ID                          int64
		Href                        string
		Name, Description           string
		Severity, SevClass          string
		Status, StatusClass, Owner  string
		Namespace, Pod, Image, Node fact
		FirstSeen, LastSeen         pageTime
		Artifacts                   int64
		Commands                    []string
		CommandCount                int64
		Runs                        []runTag
		MoreRuns                    int
	}
	pager struct {
		Page, Pages int64
		Prev, Next  string // "" on the first and last page
	}
)

// fact is one value of a case's artifacts, with a note when they differ.
type fact struct {
	Value, Full string // cut for display, and longer (for a tooltip)
	Others      int64  // how many other values the artifacts have
}

func makeFact(s store.Summary, key string, limit int) fact {
	v, ok := s.Values[key]
	if !ok {
		return fact{Value: "-"}
	}
	return fact{Value: clip(v.Value, limit, false), Full: clip(v.Value, longValueRunes, false), Others: v.Distinct - 1}
}

// Parts splits the value after each "/", where a line may break: an
// image name breaks between its registry, path and name, not inside.
func (f fact) Parts() []string {
	return strings.SplitAfter(f.Value, "/")
}

// summaryKeys are the facts a case shows, from its artifacts.
var summaryKeys = []string{cefRule, cefPriority, cefNamespace, cefPod, cefContainerName, cefContainerID, cefImage, cefNode}

// indexPage handles GET /: one page of the cases that match the filters,
// newest first.
func (s *Server) indexPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := readListFilter(r.URL.Query())
	total, cases, err := s.store.ListCases(ctx, f.query())
	if err == nil && len(cases) == 0 && total > 0 {
		// Past the last page (cases were deleted, or a hand-made link):
		// show the last one.
		f.Page = int((total + int64(f.PageSize) - 1) / int64(f.PageSize))
		total, cases, err = s.store.ListCases(ctx, f.query())
	}
	if err != nil {
		s.internalError(w, r, "case list", err)
		return
	}
	ids := make([]int64, len(cases))
	for i, c := range cases {
		ids[i] = c.ID
	}
	sums, err := s.store.Summaries(ctx, ids, store.SummaryQuery{Keys: summaryKeys,
		RecentKey: cefCommand, RecentMax: listCommands, RecentRunes: shortValueRunes + 1})
	if err != nil {
		s.internalError(w, r, "case list", err)
		return
	}
	// The page's action runs in one query, whatever the page size.
	runs, err := s.store.RunStates(ctx, ids)
	if err != nil {
		s.internalError(w, r, "case list", err)
		return
	}
	rules, err := s.store.ContainerNames(ctx, listOptions)
	if err != nil {
		s.internalError(w, r, "case list", err)
		return
	}
	namespaces, err := s.store.CEFValues(ctx, cefNamespace, listOptions)
	if err != nil {
		s.internalError(w, r, "case list", err)
		return
	}

	p := listPage{
		pageChrome: chrome(r, "Cases"),
		Filter:     f,
		Selects: []formSelect{
			{Label: "Severity", Name: "severity", Any: true, Options: options(s.cfg.Severities, f.Severity)},
			{Label: "Status", Name: "status", Any: true, Options: options(containerStatuses, f.Status)},
			{Label: "Rule", Name: "rule", Any: true, Options: options(rules, f.Rule)},
			{Label: "Namespace", Name: "namespace", Any: true, Options: options(namespaces, f.Namespace)},
		},
		Filtered: f.any(),
		Total:    total,
	}
	if f.PageSize != listPageSize {
		p.CustomPageSize = f.PageSize
	}
	live := p.Refresh > 0
	p.Pager = pager{Page: int64(f.Page), Pages: (total + int64(f.PageSize) - 1) / int64(f.PageSize)}
	if f.Page > 1 {
		p.Pager.Prev = relURL(f.values(f.Page-1, live))
	}
	if p.Pager.Page < p.Pager.Pages {
		p.Pager.Next = relURL(f.values(f.Page+1, live))
	}
	if len(cases) > 0 {
		p.First = int64((f.Page-1)*f.PageSize) + 1
		p.Last = p.First + int64(len(cases)) - 1
	}
	for _, c := range cases {
		row := makeCaseRow(c, sums[c.ID])
		row.Runs, row.MoreRuns = makeRunTags(runs[c.ID])
		p.Rows = append(p.Rows, row)
	}
	s.renderPage(w, r, http.StatusOK, "index.html", p)
}

// OtherCommands counts the case's distinct command lines but the latest.
func (r caseRow) OtherCommands() int64 { return max(r.CommandCount-1, 0) }

// MoreCommands counts the case's distinct command lines that the list
// leaves out.
func (r caseRow) MoreCommands() int64 { return max(r.CommandCount-int64(len(r.Commands)), 0) }

func makeCaseRow(c store.Container, sum store.Summary) caseRow {
	row := caseRow{
		ID:           c.ID,
		Href:         "container/" + strconv.FormatInt(c.ID, 10),
		Name:         clip(c.Name, shortValueRunes, false),
		Description:  clip(c.Description, tooltipRunes, false),
		Severity:     clip(c.Severity, 20, false),
		SevClass:     sevClass(c.Severity),
		Status:       clip(c.Status, 20, false),
		StatusClass:  statusClass(c.Status),
		Owner:        ownerLabel(c.OwnerID, 40),
		Namespace:    makeFact(sum, cefNamespace, 40),
		Pod:          makeFact(sum, cefPod, 48),
		Image:        makeFact(sum, cefImage, 60),
		Node:         makeFact(sum, cefNode, 40),
		FirstSeen:    displayTime(sum.FirstSeen),
		LastSeen:     displayTime(sum.LastSeen),
		Artifacts:    c.ArtifactCount,
		CommandCount: sum.RecentCount,
	}
	if sum.FirstSeen == "" { // no artifacts: the case's own times
		row.FirstSeen, row.LastSeen = displayTime(deref(c.StartTime)), displayTime(deref(c.EndTime))
	}
	for _, cmd := range sum.Recent {
		row.Commands = append(row.Commands, clip(cmd, shortValueRunes, false))
	}
	return row
}
