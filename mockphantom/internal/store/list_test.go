package store

import (
	"net/url"
	"path/filepath"
	"reflect"
	"testing"
)

// openTestStore opens a store on a fresh file, closed when the test ends.
func openTestStore(t *testing.T) *Store {
	t.Helper()
	st, err := Open(t.Context(), filepath.Join(t.TempDir(), "soar.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// newTestStore opens a store on a fresh file with two containers: the
// first with three artifacts whose start times are not in id order, the
// second with one.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	st := openTestStore(t)
	err := st.Write(t.Context(), func(tx *Tx) error {
		for _, c := range []struct {
			sdi    string
			starts []string
		}{
			{"c1", []string{"2026-01-01T00:00:03.000000Z", "2026-01-01T00:00:01.000000Z", "2026-01-01T00:00:02.000000Z"}},
			{"c2", []string{"2026-01-01T00:00:00.000000Z"}},
		} {
			id, _, err := tx.InsertContainer(NewContainer{Name: c.sdi, Label: "events", Severity: "medium",
				Sensitivity: "amber", Status: "new", SDI: c.sdi, Data: "{}", Tags: "[]", CustomFields: "{}"})
			if err != nil {
				return err
			}
			for i, start := range c.starts {
				a := NewArtifact{ContainerID: id, Label: "event", Severity: "low", CEF: "{}", CEFTypes: "{}",
					Data: "{}", Tags: "[]", SDI: c.sdi + "-" + string(rune('a'+i)), StartTime: start}
				if _, _, err := tx.InsertArtifact(a); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return st
}

func TestListQueries(t *testing.T) {
	t.Parallel()
	st := newTestStore(t)
	artifactIDs := func(q Query) []int64 {
		t.Helper()
		total, arts, err := st.ListArtifacts(t.Context(), q)
		if err != nil {
			t.Fatalf("ListArtifacts(%+v): %v", q, err)
		}
		ids := []int64{}
		for _, a := range arts {
			ids = append(ids, a.ID)
		}
		if q.PageSize == 0 && total != int64(len(ids)) {
			t.Errorf("ListArtifacts(%+v): total %d, but %d rows", q, total, len(ids))
		}
		return ids
	}
	for _, tt := range []struct {
		name string
		q    Query
		want []int64
	}{
		{"zero value: all in id order", Query{}, []int64{1, 2, 3, 4}},
		{"descending page", Query{Desc: true, PageSize: 3}, []int64{4, 3, 2}},
		{"second page", Query{PageSize: 3, Page: 1}, []int64{4}},
		{"one container by time", Query{Sort: "start_time", Container: 1}, []int64{2, 3, 1}},
		{"other container", Query{Container: 2}, []int64{4}},
	} {
		if got := artifactIDs(tt.q); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ids %v, want %v", tt.name, got, tt.want)
		}
	}

	total, cases, err := st.ListContainers(t.Context(), Query{Desc: true, PageSize: 1})
	if err != nil || total != 2 || len(cases) != 1 || cases[0].ID != 2 || cases[0].ArtifactCount != 1 {
		t.Errorf("ListContainers(newest) = %d, %+v, %v; want 2 in all and container 2 with 1 artifact", total, cases, err)
	}

	parsed, err := ParseQuery(url.Values{"_filter_name": {`"c1"`}}, Containers)
	if err != nil {
		t.Fatal(err)
	}
	for name, list := range map[string]func() error{
		"container restriction of containers": func() error {
			_, _, err := st.ListContainers(t.Context(), Query{Container: 1})
			return err
		},
		"container filters on artifacts": func() error {
			_, _, err := st.ListArtifacts(t.Context(), parsed)
			return err
		},
		"unknown sort field": func() error {
			_, _, err := st.ListArtifacts(t.Context(), Query{Sort: "owner"})
			return err
		},
	} {
		if err := list(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, got, err := st.ListContainers(t.Context(), parsed); err != nil || len(got) != 1 || got[0].Name != "c1" {
		t.Errorf("ListContainers(name c1) = %+v, %v", got, err)
	}
}
