package mockphantom

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// colKind tells how filter values for a column are interpreted.
type colKind int

const (
	kindInt  colKind = iota // integer ids
	kindText                // free text
	kindTime                // times stored as timeLayout text
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

// maxInValues bounds the list of an __in filter.
const maxInValues = 1000

// listQuery is a parsed listing request: WHERE conditions with their
// parameters, order and page.
type listQuery struct {
	conds    []string
	args     []any
	sortExpr string
	idExpr   string
	desc     bool
	page     int
	pageSize int // 0 = all
}

func (q listQuery) where() string {
	if len(q.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.conds, " AND ")
}

func (q listQuery) orderBy() string {
	dir := " ASC"
	if q.desc {
		dir = " DESC"
	}
	if q.sortExpr == q.idExpr {
		return " ORDER BY " + q.idExpr + dir
	}
	return " ORDER BY " + q.sortExpr + dir + ", " + q.idExpr + dir
}

func (q listQuery) offset() int { return q.page * q.pageSize }

// numPages is the page count for total rows.
func (q listQuery) numPages(total int64) int64 {
	if total == 0 {
		return 0
	}
	if q.pageSize == 0 {
		return 1
	}
	return (total + int64(q.pageSize) - 1) / int64(q.pageSize)
}

// addCond adds a condition and its parameters. cond is SQL text built by
// this package only; values from requests go into args.
func (q *listQuery) addCond(cond string, args ...any) {
	q.conds = append(q.conds, cond)
	q.args = append(q.args, args...)
}

// parseListQuery reads page, page_size, sort, order and _filter_* from v.
// Other parameters are ignored, as the real API ignores the ones it does
// not know.
func parseListQuery(v url.Values, fields map[string]column) (listQuery, error) {
	q := listQuery{idExpr: fields["id"].expr, sortExpr: fields["id"].expr, pageSize: 10}
	var err error
	if q.page, err = intParam(v, "page", 0); err != nil {
		return q, err
	}
	if q.pageSize, err = intParam(v, "page_size", 10); err != nil {
		return q, err
	}
	if q.page > 0 && q.pageSize > 0 && q.page > (1<<31)/q.pageSize {
		return q, badInput("page %d is out of range", q.page)
	}
	if s := v.Get("sort"); s != "" {
		col, ok := fields[s]
		if !ok {
			return q, badInput("unknown sort field %q; known fields: %s", s, fieldNames(fields))
		}
		q.sortExpr = col.expr
	}
	switch o := strings.ToLower(v.Get("order")); o {
	case "", "asc":
	case "desc":
		q.desc = true
	default:
		return q, badInput("order must be asc or desc, not %q", v.Get("order"))
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
		return 0, badInput("%s must be a non-negative integer, not %q", name, s)
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
func (q *listQuery) addFilter(key, raw string, fields map[string]column) error {
	spec := strings.TrimPrefix(key, "_filter_")
	name, op, _ := strings.Cut(spec, "__")
	col, ok := fields[name]
	if !ok {
		return badInput("unknown filter field %q in %s; known fields: %s", name, key, fieldNames(fields))
	}
	val, err := parseLiteral(raw)
	if err != nil {
		return badInput("invalid value for %s: %v", key, err)
	}
	if list, isList := val.([]any); isList != (op == "in") {
		if op == "in" {
			return badInput("%s needs a JSON list such as [\"a\", \"b\"]", key)
		}
		return badInput("%s takes a single value, not a list", key)
	} else if isList {
		if len(list) > maxInValues {
			return badInput("%s has %d values; at most %d are allowed", key, len(list), maxInValues)
		}
		if len(list) == 0 {
			q.addCond("0")
			return nil
		}
		args := make([]any, len(list))
		for i, item := range list {
			switch item.(type) {
			case []any, map[string]any:
				return badInput("%s: list items must be strings, numbers or booleans", key)
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
			return badInput("%s cannot compare with null", key)
		}
		sym := map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
		q.addCond(col.expr+" "+sym+" ?", arg)
	case "contains", "icontains", "startswith":
		s, isString := val.(string)
		if !isString {
			return badInput("%s needs a quoted string", key)
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
		return badInput("unknown filter operator %q in %s; known: in, gt, gte, lt, lte, contains, icontains, startswith", op, key)
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
			if t, err := parseTime(x); err == nil {
				return formatTime(t)
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
