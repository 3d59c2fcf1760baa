package mockphantom

import (
	"net/http"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// getActionRun handles GET /rest/action_run/N.
func (s *Server) getActionRun(w http.ResponseWriter, r *http.Request) {
	getOne(s, w, r, "action run", s.store.ActionRun)
}

// listActionRuns handles GET /rest/action_run (_filter_container=N for
// one case).
func (s *Server) listActionRuns(w http.ResponseWriter, r *http.Request) {
	listAll(s, w, r, store.ActionRuns, s.store.ListActionRuns)
}
