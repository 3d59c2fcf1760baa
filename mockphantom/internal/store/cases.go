package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// This file serves the web page's view of containers as cases: a listing
// with exact filters and a free-text search that reach into the artifacts'
// CEF, and summaries of each case's artifacts. CEF keys are the caller's
// constants; they reach SQL as JSON paths in parameters, like every value.

// CaseQuery selects containers for a list of cases, newest first. Empty
// fields match everything.
type CaseQuery struct {
	// Severity, Status and Name match those container fields exactly.
	Severity, Status, Name string
	// CEF keeps the containers with, for each entry, at least one artifact
	// whose CEF value under Key is exactly Value.
	CEF []CEFValue
	// Search keeps the containers whose name contains it, or that have an
	// artifact whose CEF value under one of SearchKeys contains it. Case
	// is ignored for ASCII letters, as in the icontains filter.
	Search     string
	SearchKeys []string
	// Page counts from 0; PageSize 0 lists every match.
	Page, PageSize int
}

// CEFValue is one CEF key and a value of it.
type CEFValue struct{ Key, Value string }

// cefPath is the JSON path of a top-level CEF key, for json_extract.
func cefPath(key string) string {
	return `$."` + strings.ReplaceAll(key, `"`, `\"`) + `"`
}

// ListCases returns how many containers match cq and one page of them.
func (st *Store) ListCases(ctx context.Context, cq CaseQuery) (int64, []Container, error) {
	q := Query{table: Containers, Desc: true, Page: cq.Page, PageSize: cq.PageSize}
	for _, f := range []struct{ expr, value string }{
		{"c.severity", cq.Severity}, {"c.status", cq.Status}, {"c.name", cq.Name},
	} {
		if f.value != "" {
			q.addCond(f.expr+" = ?", f.value)
		}
	}
	for _, m := range cq.CEF {
		q.addCond(`EXISTS (SELECT 1 FROM artifacts a WHERE a.container_id = c.id AND json_extract(a.cef, ?) = ?)`,
			cefPath(m.Key), m.Value)
	}
	if cq.Search != "" {
		cond := "instr(lower(c.name), lower(?)) > 0"
		args := []any{cq.Search}
		if len(cq.SearchKeys) > 0 {
			inCEF := make([]string, len(cq.SearchKeys))
			for i, k := range cq.SearchKeys {
				inCEF[i] = "instr(lower(json_extract(a.cef, ?)), lower(?)) > 0"
				args = append(args, cefPath(k), cq.Search)
			}
			cond += " OR EXISTS (SELECT 1 FROM artifacts a WHERE a.container_id = c.id AND (" +
				strings.Join(inCEF, " OR ") + "))"
		}
		q.addCond("("+cond+")", args...)
	}
	return st.ListContainers(ctx, q)
}

// Summary condenses the artifacts of one container.
type Summary struct {
	// FirstSeen and LastSeen are the earliest and latest start_time of the
	// artifacts, in TimeLayout; "" when there are none.
	FirstSeen, LastSeen string
	// Values holds, for each key of SummaryQuery.Keys that some artifact
	// carries, one of its values (the smallest) and how many there are.
	Values map[string]SummaryValue
	// Recent holds the distinct values of SummaryQuery.RecentKey, the
	// latest first, at most RecentMax of them; RecentCount counts them all.
	Recent      []string
	RecentCount int64
}

// SummaryValue is one CEF value of a container's artifacts and how many
// distinct values the key has among them.
type SummaryValue struct {
	Value    string
	Distinct int64
}

// SummaryQuery says what Summaries condenses.
type SummaryQuery struct {
	Keys      []string
	RecentKey string
	RecentMax int
	// RecentRunes cuts each recent value to that many characters; 0 keeps
	// them whole.
	RecentRunes int
}

// Summaries condenses the artifacts of the containers ids, in one read
// transaction. Containers without artifacts get a zero Summary.
func (st *Store) Summaries(ctx context.Context, ids []int64, sq SummaryQuery) (map[int64]Summary, error) {
	out := make(map[int64]Summary, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	idList := "?" + strings.Repeat(", ?", len(ids)-1)
	idArgs := make([]any, len(ids))
	for i, id := range ids {
		idArgs[i] = id
	}
	tx, err := st.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to begin read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	if err := summaryValues(ctx, tx, idList, idArgs, sq, out); err != nil {
		return nil, err
	}
	if sq.RecentKey != "" && sq.RecentMax > 0 {
		if err := summaryRecent(ctx, tx, idList, idArgs, sq, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// summaryValues fills in the times, the values of sq.Keys and the count of
// distinct values of sq.RecentKey.
func summaryValues(ctx context.Context, tx *sql.Tx, idList string, idArgs []any, sq SummaryQuery, out map[int64]Summary) error {
	keys := sq.Keys
	if sq.RecentKey != "" {
		keys = append(keys[:len(keys):len(keys)], sq.RecentKey)
	}
	var cols strings.Builder
	args := make([]any, 0, 2*len(keys)+len(idArgs))
	for range keys {
		cols.WriteString(", MIN(json_extract(a.cef, ?)), COUNT(DISTINCT json_extract(a.cef, ?))")
	}
	for _, k := range keys {
		args = append(args, cefPath(k), cefPath(k))
	}
	args = append(args, idArgs...)
	rows, err := tx.QueryContext(ctx, "SELECT a.container_id, MIN(a.start_time), MAX(a.start_time)"+cols.String()+
		" FROM artifacts a WHERE a.container_id IN ("+idList+") GROUP BY a.container_id", args...)
	if err != nil {
		return fmt.Errorf("failed to summarise artifacts: %w", err)
	}
	defer func() { _ = rows.Close() }()
	values := make([]sql.NullString, len(keys))
	counts := make([]int64, len(keys))
	dest := make([]any, 0, 3+2*len(keys))
	for rows.Next() {
		var (
			id          int64
			first, last sql.NullString
		)
		dest = append(dest[:0], &id, &first, &last)
		for i := range keys {
			dest = append(dest, &values[i], &counts[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("failed to read artifact summary: %w", err)
		}
		s := Summary{FirstSeen: first.String, LastSeen: last.String, Values: map[string]SummaryValue{}}
		for i, k := range keys {
			if i == len(sq.Keys) {
				s.RecentCount = counts[i]
				break
			}
			if values[i].Valid {
				s.Values[k] = SummaryValue{Value: values[i].String, Distinct: counts[i]}
			}
		}
		out[id] = s
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to summarise artifacts: %w", err)
	}
	return nil
}

// summaryRecent fills in the latest distinct values of sq.RecentKey.
func summaryRecent(ctx context.Context, tx *sql.Tx, idList string, idArgs []any, sq SummaryQuery, out map[int64]Summary) error {
	value := "v"
	if sq.RecentRunes > 0 {
		value = "substr(v, 1, " + strconv.Itoa(sq.RecentRunes) + ")"
	}
	args := append([]any{cefPath(sq.RecentKey)}, idArgs...)
	args = append(args, sq.RecentMax)
	// Grouped by the whole value, so that values that differ only beyond
	// the cut stay apart; the window ranks each container's groups.
	rows, err := tx.QueryContext(ctx, `SELECT container_id, `+value+` FROM (
		SELECT container_id, v, ROW_NUMBER() OVER (
			PARTITION BY container_id ORDER BY MAX(start_time) DESC, MAX(id) DESC) AS rn
		FROM (SELECT a.container_id, a.id, a.start_time, json_extract(a.cef, ?) AS v
			FROM artifacts a WHERE a.container_id IN (`+idList+`))
		WHERE v IS NOT NULL
		GROUP BY container_id, v
	) WHERE rn <= ? ORDER BY container_id, rn`, args...)
	if err != nil {
		return fmt.Errorf("failed to list recent values: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			id int64
			v  string
		)
		if err := rows.Scan(&id, &v); err != nil {
			return fmt.Errorf("failed to read recent values: %w", err)
		}
		s := out[id]
		s.Recent = append(s.Recent, v)
		out[id] = s
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to list recent values: %w", err)
	}
	return nil
}

// ContainerNames returns the distinct container names in order, at most
// limit of them.
func (st *Store) ContainerNames(ctx context.Context, limit int) ([]string, error) {
	return st.strings(ctx, "SELECT DISTINCT name FROM containers ORDER BY name LIMIT ?", limit)
}

// CEFValues returns the distinct values of one CEF key among the first
// artifacts of the containers, in order, at most limit of them. A case is
// one incident, whose artifacts share such values as the namespace; the
// first artifact stands for them, which spares reading every artifact.
func (st *Store) CEFValues(ctx context.Context, key string, limit int) ([]string, error) {
	return st.strings(ctx, `SELECT DISTINCT v FROM (
		SELECT json_extract(cef, ?) AS v FROM artifacts
		WHERE id IN (SELECT MIN(id) FROM artifacts GROUP BY container_id))
		WHERE v IS NOT NULL ORDER BY v LIMIT ?`, cefPath(key), limit)
}

func (st *Store) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := st.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to list values: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("failed to read values: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to list values: %w", err)
	}
	return out, nil
}
