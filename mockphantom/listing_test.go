package mockphantom

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

// qs builds a query string from name, value pairs.
func qs(pairs ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		v.Add(pairs[i], pairs[i+1])
	}
	return v.Encode()
}

// listIDs fetches a listing and returns its count, num_pages and ids.
func (e *testEnv) listIDs(t *testing.T, path string) (count, pages int64, ids []int64) {
	t.Helper()
	r := e.do(http.MethodGet, path, nil, asAdmin)
	r.wantStatus(t, http.StatusOK)
	var l listing[struct {
		ID int64 `json:"id"`
	}]
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	ids = []int64{}
	for _, d := range l.Data {
		ids = append(ids, d.ID)
	}
	return l.Count, l.NumPages, ids
}

func TestContainerListing(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{Labels: []string{"events", "falco"}})
	for _, c := range []map[string]any{
		{"name": "Terminal shell in container", "severity": "high", "source_data_identifier": "s1", "start_time": "2026-01-01T00:00:00Z", "external_id": "e1"},
		{"name": "Read sensitive file", "status": "open", "source_data_identifier": "s2", "start_time": "2026-01-02T00:00:00Z"},
		{"name": "terminal SHELL other", "severity": "low", "status": "closed", "start_time": "2026-01-03T00:00:00Z"},
		{"name": "Write below etc", "label": "falco", "severity": "high", "start_time": "2026-01-04T00:00:00Z"},
		{"name": "x' OR 1=1 --", "start_time": "2026-01-05T00:00:00Z"},
	} {
		e.createContainer(c)
	}

	tests := []struct {
		name      string
		query     string
		wantIDs   []int64
		wantCount int64
		wantPages int64
	}{
		{"default", "", []int64{1, 2, 3, 4, 5}, 5, 1},
		{"equal string", qs("_filter_severity", `"high"`), []int64{1, 4}, 2, 1},
		{"single quotes", qs("_filter_label", `'falco'`), []int64{4}, 1, 1},
		{"equal number", qs("_filter_id", "2"), []int64{2}, 1, 1},
		{"exact", qs("_filter_status__exact", `"open"`), []int64{2}, 1, 1},
		{"in numbers", qs("_filter_id__in", "[1, 3, 5]"), []int64{1, 3, 5}, 3, 1},
		{"in strings", qs("_filter_severity__in", `["low", "medium"]`), []int64{2, 3, 5}, 3, 1},
		{"in empty", qs("_filter_status__in", `[]`), []int64{}, 0, 0},
		{"gt", qs("_filter_id__gt", "3"), []int64{4, 5}, 2, 1},
		{"gte", qs("_filter_id__gte", "3"), []int64{3, 4, 5}, 3, 1},
		{"lt", qs("_filter_id__lt", "2"), []int64{1}, 1, 1},
		{"lte", qs("_filter_id__lte", "2"), []int64{1, 2}, 2, 1},
		{"contains is case-sensitive", qs("_filter_name__contains", `"shell"`), []int64{1}, 1, 1},
		{"icontains", qs("_filter_name__icontains", `"shell"`), []int64{1, 3}, 2, 1},
		{"startswith", qs("_filter_name__startswith", `"Terminal"`), []int64{1}, 1, 1},
		{"null", qs("_filter_source_data_identifier", "null"), []int64{3, 4, 5}, 3, 1},
		{"time in another layout", qs("_filter_start_time__gte", `"2026-01-03T00:00:00+00:00"`), []int64{3, 4, 5}, 3, 1},
		{"time without zone", qs("_filter_start_time__lt", `"2026-01-02T00:00:00"`), []int64{1}, 1, 1},
		{"two filters", qs("_filter_severity", `"high"`, "_filter_id__gt", "1"), []int64{4}, 1, 1},
		{"external_id", qs("_filter_external_id", `"e1"`), []int64{1}, 1, 1},
		{"injection is a value", qs("_filter_name", `"x' OR 1=1 --"`), []int64{5}, 1, 1},
		{"sort desc", qs("sort", "start_time", "order", "desc"), []int64{5, 4, 3, 2, 1}, 5, 1},
		{"sort by text then id", qs("sort", "severity"), []int64{1, 4, 3, 2, 5}, 5, 1},
		{"page size", qs("page_size", "2"), []int64{1, 2}, 5, 3},
		{"second page", qs("page", "1", "page_size", "2"), []int64{3, 4}, 5, 3},
		{"last page", qs("page", "2", "page_size", "2"), []int64{5}, 5, 3},
		{"past the end", qs("page", "3", "page_size", "2"), []int64{}, 5, 3},
		{"page size 0 is all", qs("page_size", "0", "order", "desc"), []int64{5, 4, 3, 2, 1}, 5, 1},
		{"unknown parameters are ignored", qs("include_expensive", "true"), []int64{1, 2, 3, 4, 5}, 5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			count, pages, ids := e.listIDs(t, "/rest/container?"+tt.query)
			if count != tt.wantCount || pages != tt.wantPages || !reflect.DeepEqual(ids, tt.wantIDs) {
				t.Errorf("?%s: count %d, num_pages %d, ids %v; want %d, %d, %v",
					tt.query, count, pages, ids, tt.wantCount, tt.wantPages, tt.wantIDs)
			}
		})
	}
}

func TestListingErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	tests := []struct {
		name, path, msg string
	}{
		{"unknown field", "/rest/container?" + qs("_filter_bogus", `"x"`), `"bogus"`},
		{"field not allowed", "/rest/container?" + qs("_filter_description", `"x"`), `"description"`},
		{"artifact field on containers", "/rest/container?" + qs("_filter_type", `"x"`), `"type"`},
		{"unknown op", "/rest/container?" + qs("_filter_name__regex", `"x"`), `"regex"`},
		{"unquoted string", "/rest/container?" + qs("_filter_name", "shell"), "_filter_name"},
		{"unterminated quote", "/rest/container?" + qs("_filter_name", `'x`), "_filter_name"},
		{"in without a list", "/rest/container?" + qs("_filter_id__in", "3"), "list"},
		{"list without in", "/rest/container?" + qs("_filter_id", "[3]"), "list"},
		{"contains a number", "/rest/container?" + qs("_filter_name__contains", "3"), "quoted string"},
		{"gt null", "/rest/container?" + qs("_filter_id__gt", "null"), "null"},
		{"object value", "/rest/container?" + qs("_filter_name", `{"a": 1}`), "_filter_name"},
		{"unknown sort", "/rest/container?" + qs("sort", "id; DROP TABLE containers"), "unknown sort field"},
		{"bad order", "/rest/container?" + qs("order", "up"), "order"},
		{"negative page", "/rest/container?" + qs("page", "-1"), "page"},
		{"page size not a number", "/rest/artifact?" + qs("page_size", "ten"), "page_size"},
		{"unknown artifact field", "/rest/artifact?" + qs("_filter_cef", `"x"`), `"cef"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e.do(http.MethodGet, tt.path, nil, asAdmin).wantFailure(t, http.StatusBadRequest, tt.msg)
		})
	}
}

func TestArtifactListing(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	c1 := e.createContainer(map[string]any{"name": "c1"})
	c2 := e.createContainer(map[string]any{"name": "c2"})
	arts := []any{
		map[string]any{"container_id": c1, "name": "a", "type": "falco"},
		map[string]any{"container_id": c2, "name": "b"},
		map[string]any{"container_id": c1, "name": "c", "severity": "high"},
		map[string]any{"container_id": c2, "name": "a", "type": "falco"},
	}
	e.do(http.MethodPost, "/rest/artifact", arts, asAdmin).wantStatus(t, http.StatusOK)

	tests := []struct {
		name, path string
		want       []int64
	}{
		{"all", "/rest/artifact", []int64{1, 2, 3, 4}},
		{"container_id", "/rest/artifact?" + qs("_filter_container_id", itoa(c1)), []int64{1, 3}},
		{"container as the API names it", "/rest/artifact?" + qs("_filter_container", itoa(c2)), []int64{2, 4}},
		{"type", "/rest/artifact?" + qs("_filter_type", `"falco"`), []int64{1, 4}},
		{"sort by container", "/rest/artifact?" + qs("sort", "container", "order", "desc"), []int64{4, 2, 3, 1}},
		{"container endpoint", "/rest/container/" + itoa(c1) + "/artifacts", []int64{1, 3}},
		{"container endpoint with filter", "/rest/container/" + itoa(c2) + "/artifacts?" + qs("_filter_name", `"a"`), []int64{4}},
		{"container endpoint ignores other container filters", "/rest/container/" + itoa(c2) + "/artifacts?" + qs("_filter_container", itoa(c1)), []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, ids := e.listIDs(t, tt.path)
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("%s: ids %v, want %v", tt.path, ids, tt.want)
			}
		})
	}
	t.Run("missing container", func(t *testing.T) {
		t.Parallel()
		e.do(http.MethodGet, "/rest/container/999/artifacts", nil, asAdmin).wantFailure(t, http.StatusNotFound, "container 999 does not exist")
	})
}
