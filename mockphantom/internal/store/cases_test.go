package store

import (
	"encoding/json"
	"reflect"
	"testing"
)

// newCaseStore opens a store with three cases whose artifacts carry CEF:
//
//	1 "Terminal shell" high, shop/web-1, commands "sh" then "bash" then "sh" again
//	2 "Read file"      low,  pay/api-1,  a file, no command
//	3 "Terminal shell" low,  no artifacts
func newCaseStore(t *testing.T) *Store {
	t.Helper()
	st := openTestStore(t)
	type art struct {
		start string
		cef   map[string]any
	}
	cases := []struct {
		name, severity string
		arts           []art
	}{
		{"Terminal shell", "high", []art{
			{"2026-01-01T00:00:01.000000Z", map[string]any{"kubernetesNamespace": "shop", "kubernetesPodName": "web-1", "commandLine": "sh"}},
			{"2026-01-01T00:00:02.000000Z", map[string]any{"kubernetesNamespace": "shop", "kubernetesPodName": "web-1", "commandLine": "bash -i"}},
			{"2026-01-01T00:00:03.000000Z", map[string]any{"kubernetesNamespace": "shop", "kubernetesPodName": "web-2", "commandLine": "sh"}},
		}},
		{"Read file", "low", []art{
			{"2026-01-01T00:01:00.000000Z", map[string]any{"kubernetesNamespace": "pay", "kubernetesPodName": "api-1", "fileName": "/etc/Shadow", "userId": 0}},
		}},
		{"Terminal shell", "low", nil},
	}
	err := st.Write(t.Context(), func(tx *Tx) error {
		for _, c := range cases {
			id, _, err := tx.InsertContainer(NewContainer{Name: c.name, Label: "events", Severity: c.severity,
				Sensitivity: "amber", Status: "new", Data: "{}", Tags: "[]", CustomFields: "{}"})
			if err != nil {
				return err
			}
			for _, a := range c.arts {
				cef, _ := json.Marshal(a.cef)
				_, _, err := tx.InsertArtifact(NewArtifact{ContainerID: id, Label: "falco", Severity: c.severity,
					CEF: string(cef), CEFTypes: "{}", Data: "{}", Tags: "[]", StartTime: a.start})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestListCases(t *testing.T) {
	t.Parallel()
	st := newCaseStore(t)
	search := []string{"kubernetesPodName", "commandLine", "fileName"}
	tests := []struct {
		name      string
		q         CaseQuery
		wantTotal int64
		wantIDs   []int64
	}{
		{"all, newest first", CaseQuery{}, 3, []int64{3, 2, 1}},
		{"severity", CaseQuery{Severity: "low"}, 2, []int64{3, 2}},
		{"name", CaseQuery{Name: "Terminal shell"}, 2, []int64{3, 1}},
		{"severity and name", CaseQuery{Name: "Terminal shell", Severity: "high"}, 1, []int64{1}},
		{"status", CaseQuery{Status: "closed"}, 0, []int64{}},
		{"CEF value", CaseQuery{CEF: []CEFValue{{"kubernetesNamespace", "pay"}}}, 1, []int64{2}},
		{"CEF value of a later artifact", CaseQuery{CEF: []CEFValue{{"kubernetesPodName", "web-2"}}}, 1, []int64{1}},
		{"CEF value is exact", CaseQuery{CEF: []CEFValue{{"kubernetesNamespace", "sho"}}}, 0, []int64{}},
		{"search in the name", CaseQuery{Search: "READ", SearchKeys: search}, 1, []int64{2}},
		{"search in CEF, any case", CaseQuery{Search: "shadow", SearchKeys: search}, 1, []int64{2}},
		{"search in a command", CaseQuery{Search: "-i", SearchKeys: search}, 1, []int64{1}},
		{"search only in the keys given", CaseQuery{Search: "shop", SearchKeys: search}, 0, []int64{}},
		{"search is not a pattern", CaseQuery{Search: "%", SearchKeys: search}, 0, []int64{}},
		{"search and filter", CaseQuery{Search: "shell", Severity: "low", SearchKeys: search}, 1, []int64{3}},
		{"page", CaseQuery{Page: 1, PageSize: 2}, 3, []int64{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			total, cs, err := st.ListCases(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			ids := []int64{}
			for _, c := range cs {
				ids = append(ids, c.ID)
			}
			if total != tt.wantTotal || !reflect.DeepEqual(ids, tt.wantIDs) {
				t.Errorf("ListCases(%+v) = %d, %v; want %d, %v", tt.q, total, ids, tt.wantTotal, tt.wantIDs)
			}
		})
	}
}

func TestSummaries(t *testing.T) {
	t.Parallel()
	st := newCaseStore(t)
	sq := SummaryQuery{Keys: []string{"kubernetesNamespace", "kubernetesPodName", "userId"}, RecentKey: "commandLine", RecentMax: 5}
	got, err := st.Summaries(t.Context(), []int64{1, 2, 3}, sq)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]Summary{
		1: {FirstSeen: "2026-01-01T00:00:01.000000Z", LastSeen: "2026-01-01T00:00:03.000000Z",
			Values: map[string]SummaryValue{"kubernetesNamespace": {"shop", 1}, "kubernetesPodName": {"web-1", 2}},
			Recent: []string{"sh", "bash -i"}, RecentCount: 2},
		2: {FirstSeen: "2026-01-01T00:01:00.000000Z", LastSeen: "2026-01-01T00:01:00.000000Z",
			Values: map[string]SummaryValue{"kubernetesNamespace": {"pay", 1}, "kubernetesPodName": {"api-1", 1}, "userId": {"0", 1}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Summaries = %+v\nwant %+v", got, want)
	}

	sq.RecentMax, sq.RecentRunes = 1, 2
	got, err = st.Summaries(t.Context(), []int64{1}, sq)
	if err != nil {
		t.Fatal(err)
	}
	if s := got[1]; !reflect.DeepEqual(s.Recent, []string{"sh"}) || s.RecentCount != 2 {
		t.Errorf("with RecentMax 1, RecentRunes 2: Recent = %q (count %d), want [sh] (count 2)", s.Recent, s.RecentCount)
	}
	sq.RecentRunes = 1
	if got, err = st.Summaries(t.Context(), []int64{1}, sq); err != nil || got[1].Recent[0] != "s" {
		t.Errorf("with RecentRunes 1: Recent = %q, %v; want [s]", got[1].Recent, err)
	}
}

func TestDistinctValues(t *testing.T) {
	t.Parallel()
	st := newCaseStore(t)
	names, err := st.ContainerNames(t.Context(), 10)
	if err != nil || !reflect.DeepEqual(names, []string{"Read file", "Terminal shell"}) {
		t.Errorf("ContainerNames = %q, %v", names, err)
	}
	ns, err := st.CEFValues(t.Context(), "kubernetesPodName", 2)
	if err != nil || !reflect.DeepEqual(ns, []string{"api-1", "web-1"}) {
		t.Errorf("CEFValues(pod, 2) = %q, %v", ns, err)
	}
}

func TestUpdateContainerStore(t *testing.T) {
	t.Parallel()
	st := newCaseStore(t)
	status, owner := "closed", `"alice"`
	found, err := st.UpdateContainer(t.Context(), 2, ContainerUpdate{Status: &status, OwnerID: &owner})
	if err != nil || !found {
		t.Fatalf("UpdateContainer = %v, %v", found, err)
	}
	c, _, _ := st.Container(t.Context(), 2)
	if c.Status != "closed" || string(c.OwnerID) != `"alice"` {
		t.Errorf("after update: status %q, owner %s", c.Status, c.OwnerID)
	}
	empty := ""
	if _, err := st.UpdateContainer(t.Context(), 2, ContainerUpdate{OwnerID: &empty}); err != nil {
		t.Fatal(err)
	}
	if c, _, _ = st.Container(t.Context(), 2); c.OwnerID != nil {
		t.Errorf("owner after clearing = %s, want NULL", c.OwnerID)
	}
	for _, u := range []ContainerUpdate{{}, {Status: &status}} {
		if found, err := st.UpdateContainer(t.Context(), 99, u); err != nil || found {
			t.Errorf("UpdateContainer(99, %+v) = %v, %v; want not found", u, found, err)
		}
	}
	if found, err := st.UpdateContainer(t.Context(), 1, ContainerUpdate{}); err != nil || !found {
		t.Errorf("empty update of 1 = %v, %v; want found", found, err)
	}
}
