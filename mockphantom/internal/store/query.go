package store

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Table names what a listing lists.
type Table int

const (
	// Containers are the cases.
	Containers Table = iota + 1
	// Artifacts are the events of the cases.
	Artifacts
	// Notes are what people and services wrote into the cases.
	Notes
	// ActionRuns are the actions playbooks ran on the cases.
	ActionRuns
)

func (t Table) String() string {
	switch t {
	case Containers:
		return "containers"
	case Artifacts:
		return "artifacts"
	case Notes:
		return "notes"
	case ActionRuns:
		return "action runs"
	}
	return "Table(" + strconv.Itoa(int(t)) + ")"
}

// from is the table with the alias that the column expressions use.
func (t Table) from() string {
	return map[Table]string{Containers: "containers c", Artifacts: "artifacts a", Notes: "notes n", ActionRuns: "action_runs r"}[t]
}

// fields are the fields of t that listings may filter and sort on.
func (t Table) fields() map[string]column {
	return map[Table]map[string]column{Containers: containerFields, Artifacts: artifactFields,
		Notes: noteFields, ActionRuns: actionRunFields}[t]
}

// colKind tells how filter values for a column are interpreted.
type colKind int

const (
	kindInt  colKind = iota // integer ids
	kindText                // free text
	kindTime                // times stored as TimeLayout text
)

// column is a field that listings may filter and sort on. expr is a
// constant SQL expression; request input never reaches SQL text.
type column struct {
	expr string
	kind colKind
}

// Fields clients may filter and sort containers on.
var containerFields = map[string]column{
	"id":                     {"c.id", kindInt},
	"name":                   {"c.name", kindText},
	"label":                  {"c.label", kindText},
	"severity":               {"c.severity", kindText},
	"status":                 {"c.status", kindText},
	"source_data_identifier": {"c.source_data_identifier", kindText},
	"start_time":             {"c.start_time", kindTime},
	"end_time":               {"c.end_time", kindTime},
	"create_time":            {"c.create_time", kindTime},
	"external_id":            {"c.external_id", kindText},
}

// Fields clients may filter and sort artifacts on. The real API calls the
// container "container"; container_id is accepted as well.
var artifactFields = map[string]column{
	"id":                     {"a.id", kindInt},
	"container":              {"a.container_id", kindInt},
	"container_id":           {"a.container_id", kindInt},
	"name":                   {"a.name", kindText},
	"label":                  {"a.label", kindText},
	"severity":               {"a.severity", kindText},
	"source_data_identifier": {"a.source_data_identifier", kindText},
	"type":                   {"a.type", kindText},
	"start_time":             {"a.start_time", kindTime},
	"end_time":               {"a.end_time", kindTime},
	"create_time":            {"a.create_time", kindTime},
}

// Fields clients may filter and sort notes on; see artifactFields for
// container_id.
var noteFields = map[string]column{
	"id":           {"n.id", kindInt},
	"container":    {"n.container_id", kindInt},
	"container_id": {"n.container_id", kindInt},
	"title":        {"n.title", kindText},
	"note_type":    {"n.note_type", kindText},
	"note_format":  {"n.note_format", kindText},
	"create_time":  {"n.create_time", kindTime},
}

// Fields clients may filter and sort action runs on.
var actionRunFields = map[string]column{
	"id":           {"r.id", kindInt},
	"container":    {"r.container_id", kindInt},
	"container_id": {"r.container_id", kindInt},
	"playbook":     {"r.playbook", kindText},
	"action":       {"r.action", kindText},
	"name":         {"r.name", kindText},
	"status":       {"r.status", kindText},
	"start_time":   {"r.start_time", kindTime},
	"end_time":     {"r.end_time", kindTime},
}

// maxInValues bounds the list of an __in filter.
const maxInValues = 1000

// Query selects one page of a listing: filters, order and page. Its zero
// value lists every row in id order. Filters come from ParseQuery.
type Query struct {
	// Sort is the field to order by; "" orders by id. Rows with equal
	// values stay in id order.
	Sort string
	// Desc orders from the largest value down.
	Desc bool
	// Page counts from 0; PageSize is the number of rows per page, 0 for
	// all of them.
	Page, PageSize int
	// Container restricts a listing of artifacts, notes or action runs to
	// those of one container; 0 lists those of every container.
	Container int64

	table Table    // the filters' table; 0 when there are none
	conds []string // SQL text built by this package only
	args  []any    // the values of conds, from the request
}

// NumPages is the page count for total rows.
func (q Query) NumPages(total int64) int64 {
	if total == 0 {
		return 0
	}
	if q.PageSize == 0 {
		return 1
	}
	return (total + int64(q.PageSize) - 1) / int64(q.PageSize)
}

// sql returns the WHERE and ORDER BY clauses of q for a listing of t, and
// the parameters of the WHERE clause.
func (q Query) sql(t Table) (where, orderBy string, args []any, err error) {
	if q.table != 0 && q.table != t {
		return "", "", nil, fmt.Errorf("a query with filters of %s cannot list %s", q.table, t)
	}
	conds, args := q.conds, q.args
	if q.Container != 0 {
		col, ok := t.fields()["container"]
		if !ok {
			return "", "", nil, fmt.Errorf("%s cannot be restricted to a container", t)
		}
		conds = append(conds[:len(conds):len(conds)], col.expr+" = ?")
		args = append(args[:len(args):len(args)], q.Container)
	}
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}

	id := t.fields()["id"].expr
	sort := id
	if q.Sort != "" {
		col, ok := t.fields()[q.Sort]
		if !ok {
			return "", "", nil, fmt.Errorf("%s cannot be sorted on unknown field %q", t, q.Sort)
		}
		sort = col.expr
	}
	dir := " ASC"
	if q.Desc {
		dir = " DESC"
	}
	if sort == id {
		return where, " ORDER BY " + id + dir, args, nil
	}
	return where, " ORDER BY " + sort + dir + ", " + id + dir, args, nil
}

// addCond adds a condition and its parameters. cond is SQL text built by
// this package only; values from requests go into args.
func (q *Query) addCond(cond string, args ...any) {
	q.conds = append(q.conds, cond)
	q.args = append(q.args, args...)
}

// ParseQuery reads the listing parameters of the REST API from v: page,
// page_size (default 10), sort, order and _filter_<field>[__<op>]. Other
// parameters are ignored, as the real API ignores the ones it does not
// know. Its errors are the client's mistakes, worded for the client.
func ParseQuery(v url.Values, t Table) (Query, error) {
	fields := t.fields()
	if fields == nil {
		return Query{}, fmt.Errorf("cannot list %s", t)
	}
	q := Query{table: t}
	var err error
	if q.Page, err = intParam(v, "page", 0); err != nil {
		return q, err
	}
	if q.PageSize, err = intParam(v, "page_size", 10); err != nil {
		return q, err
	}
	if q.Page > 0 && q.PageSize > 0 && q.Page > (1<<31)/q.PageSize {
		return q, fmt.Errorf("page %d is out of range", q.Page)
	}
	if s := v.Get("sort"); s != "" {
		if _, ok := fields[s]; !ok {
			return q, fmt.Errorf("unknown sort field %q; known fields: %s", s, fieldNames(fields))
		}
		q.Sort = s
	}
	switch o := strings.ToLower(v.Get("order")); o {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return q, fmt.Errorf("order must be asc or desc, not %q", v.Get("order"))
	}

	keys := make([]string, 0, len(v))
	for k := range v {
		if strings.HasPrefix(k, "_filter_") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // a stable SQL text for equal requests
	for _, k := range keys {
		for _, raw := range v[k] {
			if err := q.addFilter(k, raw, fields); err != nil {
				return q, err
			}
		}
	}
	return q, nil
}

func intParam(v url.Values, name string, def int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s must be a non-negative integer, not %q", name, s)
	}
	return n, nil
}

func fieldNames(fields map[string]column) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// addFilter turns one _filter_<field>[__<op>]=<literal> into a condition.
func (q *Query) addFilter(key, raw string, fields map[string]column) error {
	spec := strings.TrimPrefix(key, "_filter_")
	name, op, _ := strings.Cut(spec, "__")
	col, ok := fields[name]
	if !ok {
		return fmt.Errorf("unknown filter field %q in %s; known fields: %s", name, key, fieldNames(fields))
	}
	val, err := parseLiteral(raw)
	if err != nil {
		return fmt.Errorf("invalid value for %s: %v", key, err)
	}
	if list, isList := val.([]any); isList != (op == "in") {
		if op == "in" {
			return fmt.Errorf("%s needs a JSON list such as [\"a\", \"b\"]", key)
		}
		return fmt.Errorf("%s takes a single value, not a list", key)
	} else if isList {
		if len(list) > maxInValues {
			return fmt.Errorf("%s has %d values; at most %d are allowed", key, len(list), maxInValues)
		}
		if len(list) == 0 {
			q.addCond("0")
			return nil
		}
		args := make([]any, len(list))
		for i, item := range list {
			switch item.(type) {
			case []any, map[string]any:
				return fmt.Errorf("%s: list items must be strings, numbers or booleans", key)
			}
			args[i] = sqlValue(col, item)
		}
		q.addCond(col.expr+" IN (?"+strings.Repeat(", ?", len(list)-1)+")", args...)
		return nil
	}

	arg := sqlValue(col, val)
	switch op {
	case "", "exact":
		if val == nil {
			q.addCond(col.expr + " IS NULL")
		} else {
			q.addCond(col.expr+" = ?", arg)
		}
	case "gt", "gte", "lt", "lte":
		if val == nil {
			return fmt.Errorf("%s cannot compare with null", key)
		}
		sym := map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
		q.addCond(col.expr+" "+sym+" ?", arg)
	case "contains", "icontains", "startswith":
		s, isString := val.(string)
		if !isString {
			return fmt.Errorf("%s needs a quoted string", key)
		}
		switch op {
		case "contains":
			q.addCond("instr("+col.expr+", ?) > 0", s)
		case "icontains":
			// SQLite's lower() folds ASCII only; so does this filter.
			q.addCond("instr(lower("+col.expr+"), lower(?)) > 0", s)
		default:
			q.addCond("substr("+col.expr+", 1, length(?)) = ?", s, s)
		}
	default:
		return fmt.Errorf("unknown filter operator %q in %s; known: in, gt, gte, lt, lte, contains, icontains, startswith", op, key)
	}
	return nil
}

// sqlValue converts a parsed literal to a query parameter for col. Times
// written in any accepted layout are rewritten to the stored layout so that
// text comparison is time comparison.
func sqlValue(col column, v any) any {
	switch x := v.(type) {
	case bool:
		if x {
			return 1
		}
		return 0
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case string:
		if col.kind == kindTime {
			if t, err := ParseTime(x); err == nil {
				return FormatTime(t)
			}
		}
		return x
	}
	return v
}

// parseLiteral reads a filter value the way the real API does: a quoted
// string ("x" or 'x'), a number, true/false (also Python's True/False),
// null/None, or a JSON list of those.
func parseLiteral(s string) (any, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return nil, fmt.Errorf("empty value; quote strings, as in \"value\"")
	case "null", "None":
		return nil, nil
	case "true", "True":
		return true, nil
	case "false", "False":
		return false, nil
	}
	switch c := s[0]; {
	case c == '"' || c == '[' || c == '-' || (c >= '0' && c <= '9'):
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil || dec.More() {
			return nil, fmt.Errorf("%s is not a valid number, quoted string or JSON list", s)
		}
		if _, isObject := v.(map[string]any); isObject {
			return nil, fmt.Errorf("objects are not allowed")
		}
		return v, nil
	case c == '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return nil, fmt.Errorf("unterminated string %s", s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], `\'`, `'`), nil
	}
	return nil, fmt.Errorf("%s is neither a number nor a quoted string (write \"%s\")", s, s)
}
