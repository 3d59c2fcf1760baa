package responder

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// readyFor is how long the API server's answer is trusted: probes do not
// each cost a request.
const readyFor = 5 * time.Second

// readiness caches whether the API server answers.
type readiness struct {
	check func(ctx context.Context) error

	mu      sync.Mutex
	checked time.Time
	err     error
}

func (r *readiness) get(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.checked.IsZero() && time.Since(r.checked) < readyFor {
		return r.err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	r.err, r.checked = r.check(ctx), time.Now()
	return r.err
}

// apiServerAnswers asks the API server for its version.
func (s *Server) apiServerAnswers(ctx context.Context) error {
	if _, err := s.kube.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw(); err != nil {
		return fmt.Errorf("the Kubernetes API server does not answer: %w", err)
	}
	return nil
}

func (s *Server) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	_, _ = w.Write([]byte("ok\n"))
}

// serveReadyz is ready when requests can be served: the API server
// answers and the token can be read.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.token.get(); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if err := s.ready.get(r.Context()); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
