package mockphantom

import (
	"context"
	"fmt"
	"net/http"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// getOne answers GET /rest/<what>/N with the object get returns, or 404.
func getOne[T any](s *Server, w http.ResponseWriter, r *http.Request, what string,
	get func(context.Context, int64) (T, bool, error)) {
	id, ok := restID(w, r, what)
	if !ok {
		return
	}
	v, found, err := get(r.Context(), id)
	switch {
	case err != nil:
		s.internalError(w, r, "get "+what, err)
	case !found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %d does not exist", what, id))
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// listAll answers a listing of t with the listing parameters of the
// request (page, page_size, sort, order, _filter_...).
func listAll[T any](s *Server, w http.ResponseWriter, r *http.Request, t store.Table,
	list func(context.Context, store.Query) (int64, []T, error)) {
	q, err := store.ParseQuery(r.URL.Query(), t)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	count, data, err := list(r.Context(), q)
	if err != nil {
		s.internalError(w, r, "list "+t.String(), err)
		return
	}
	writeJSON(w, http.StatusOK, listing[T]{Count: count, NumPages: q.NumPages(count), Data: data})
}
