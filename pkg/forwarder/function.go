package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

// ModeFunction serves the Kubeless function runtime contract instead of
// consuming NATS: HTTP on port 8080, GET /healthz, and each POST / carrying
// one Falco event as Kubeless's NATS trigger sends it. The answer is 200
// only once SOAR holds the event, so the trigger's log is truthful. The
// trigger drops an event answered otherwise: this mode is as durable as
// Kubeless is (not at all); prefer JetStream mode.
const ModeFunction Mode = "function"

// errGivenBack is what a request hears when the forwarder stops first.
var errGivenBack = errors.New("the forwarder is stopping")

// answerDeadLetters keeps nothing: in function mode the HTTP answer tells
// the caller why its event cannot be delivered.
type answerDeadLetters struct{}

func (answerDeadLetters) put(_ context.Context, ms []*Message, _ []*DeadLetterError) []error {
	return make([]error, len(ms))
}

// functionSource serves HTTP on cfg.Listen; every POST becomes a message.
func (f *Forwarder) functionSource() *source {
	p := f.newPipeline(newMemoryAnchors(), answerDeadLetters{})
	var srv atomic.Pointer[http.Server]
	run := func(ctx context.Context, out chan<- *Message, ready *atomic.Bool) error {
		mux := http.NewServeMux()
		mux.Handle("GET /", f.Handler()) // /healthz, /readyz, /metrics
		mux.HandleFunc("POST /{$}", func(w http.ResponseWriter, r *http.Request) { f.serveEvent(ctx, w, r, out) })
		ln, err := net.Listen("tcp", f.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen for function calls on %s: %w", f.cfg.Listen, err)
		}
		s := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		srv.Store(s)
		f.log.Info("serving the Kubeless function contract", "listen", ln.Addr().String())
		ready.Store(true)
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("function server: %w", err)
		}
		return nil
	}
	stop := func() {
		if s := srv.Load(); s != nil {
			shutCtx, cancel := context.WithTimeout(context.Background(), f.cfg.FunctionTimeout)
			defer cancel()
			_ = s.Shutdown(shutCtx)
		}
	}
	return &source{pipe: p, run: run, stop: stop}
}

type functionAnswer struct {
	Stored bool   `json:"stored"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

// serveEvent hands one event to the workers and answers once it is settled.
func (f *Forwarder) serveEvent(ctx context.Context, w http.ResponseWriter, r *http.Request, out chan<- *Message) {
	body, err := io.ReadAll(io.LimitReader(r.Body, falco.MaxEventBytes+1))
	if err != nil {
		answer(w, http.StatusBadRequest, functionAnswer{Error: "read body: " + err.Error()})
		return
	}
	settled := make(chan error, 1)
	m := &Message{
		Subject:  r.Header.Get("event-namespace"),
		Data:     body,
		Received: time.Now(),
		Done:     func(err error) { settled <- err },
		Nak:      func() { settled <- errGivenBack },
	}
	f.log.Debug("function call", "event_id", r.Header.Get("event-id"), "event_type", r.Header.Get("event-type"), "bytes", len(body))
	timer := time.NewTimer(f.cfg.FunctionTimeout)
	defer timer.Stop()
	select {
	case out <- m:
	case <-ctx.Done():
		answer(w, http.StatusServiceUnavailable, functionAnswer{Error: errGivenBack.Error()})
		return
	case <-timer.C:
		answer(w, http.StatusServiceUnavailable, functionAnswer{Error: "too busy to take the event"})
		return
	}
	select {
	case err := <-settled:
		var dl *DeadLetterError
		switch {
		case err == nil:
			answer(w, http.StatusOK, functionAnswer{Stored: true})
		case errors.As(err, &dl) && dl.Reason == ReasonTooLarge:
			answer(w, http.StatusRequestEntityTooLarge, functionAnswer{Reason: dl.Reason, Error: dl.Detail})
		case errors.As(err, &dl) && dl.Reason == ReasonInvalidEvent:
			answer(w, http.StatusBadRequest, functionAnswer{Reason: dl.Reason, Error: dl.Detail})
		case errors.As(err, &dl):
			answer(w, http.StatusUnprocessableEntity, functionAnswer{Reason: dl.Reason, Error: dl.Detail})
		default:
			answer(w, http.StatusServiceUnavailable, functionAnswer{Error: err.Error()})
		}
	case <-timer.C:
		msg := "SOAR has not stored the event yet"
		if p := f.pipe.Load(); p != nil && p.Blocked() != nil {
			msg += ": " + p.Blocked().Error()
		}
		answer(w, http.StatusServiceUnavailable, functionAnswer{Error: msg})
	}
}

func answer(w http.ResponseWriter, status int, a functionAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(a)
}
