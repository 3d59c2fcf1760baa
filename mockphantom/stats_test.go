package mockphantom

import (
	"net/http"
	"testing"
)

func TestStats(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	cid := e.createContainer(map[string]any{"name": "c"})
	arts := []any{
		map[string]any{"container_id": cid, "source_data_identifier": "a"},
		map[string]any{"container_id": cid, "source_data_identifier": "a"},
	}
	e.do(http.MethodPost, "/rest/artifact", arts, asAdmin).wantStatus(t, http.StatusOK)
	e.do(http.MethodGet, "/rest/version", nil, noAuth).wantStatus(t, http.StatusUnauthorized)

	got := e.srv.Stats()
	checks := []struct {
		name      string
		got, want int64
	}{
		{"requests", got.Requests, 3},
		{"POST /rest/container", got.ByRoute["POST /rest/container"], 1},
		{"POST /rest/artifact", got.ByRoute["POST /rest/artifact"], 1},
		{"status 200", got.ByStatus[200], 2},
		{"status 401", got.ByStatus[401], 1},
		{"containers created", got.ContainersCreated, 1},
		{"artifacts created", got.ArtifactsCreated, 1},
		{"duplicates", got.Duplicates, 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("stats %s = %d, want %d (stats %+v)", c.name, c.got, c.want, got)
		}
	}

	r := e.do(http.MethodGet, "/mock/stats", nil, asAdmin)
	r.wantStatus(t, http.StatusOK)
	m := r.decode(t)
	if num(m["artifacts_created"]) != 1 || m["by_status"].(map[string]any)["200"] == nil {
		t.Errorf("/mock/stats = %s, want artifacts_created 1 and by_status[\"200\"]", r.body)
	}
}
