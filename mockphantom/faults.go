package mockphantom

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Faults are injected into /rest requests (not /mock, /healthz or the web
// page, so that faults can always be inspected and cleared). A request hit
// by a fault stores nothing.
type Faults struct {
	// Latency is added to every /rest request.
	Latency time.Duration
	// ErrorRate is the share (0..1) of /rest requests answered 503.
	ErrorRate float64
	// TimeoutRate is the share (0..1) of /rest requests that hang until
	// the client gives up (or the server shuts down).
	TimeoutRate float64
	// ThrottleRate is the share (0..1) of /rest requests answered 429 Too
	// Many Requests, as an overloaded SOAR or a rate-limiting proxy does.
	ThrottleRate float64
	// DownUntil: until then every /rest request is answered 503.
	DownUntil time.Time
}

// SetFaults replaces the injected faults. Rates are clamped to 0..1 and a
// negative latency counts as none.
func (s *Server) SetFaults(f Faults) {
	f.Latency = max(f.Latency, 0)
	f.ErrorRate = min(max(f.ErrorRate, 0), 1)
	f.TimeoutRate = min(max(f.TimeoutRate, 0), 1)
	f.ThrottleRate = min(max(f.ThrottleRate, 0), 1)
	s.faultMu.Lock()
	s.faults = f
	s.faultMu.Unlock()
}

// currentFaults returns the faults in effect.
func (s *Server) currentFaults() Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faults
}

// faultAction is what the fault layer decided for one request.
type faultAction int

const (
	faultNone faultAction = iota
	faultDown
	faultError
	faultHang
	faultThrottle
)

// decide draws the fault for one request from the seeded source.
func (s *Server) decide(now time.Time) (time.Duration, faultAction) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := s.faults
	switch {
	case now.Before(f.DownUntil):
		return f.Latency, faultDown
	case f.ErrorRate > 0 && s.rng.Float64() < f.ErrorRate:
		return f.Latency, faultError
	case f.TimeoutRate > 0 && s.rng.Float64() < f.TimeoutRate:
		return f.Latency, faultHang
	case f.ThrottleRate > 0 && s.rng.Float64() < f.ThrottleRate:
		return f.Latency, faultThrottle
	}
	return f.Latency, faultNone
}

// withFaults applies the injected faults before h runs.
func (s *Server) withFaults(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// In flight as SOAR sees it: from arrival, latency included, until
		// it answers (the client cannot hear the answer before that).
		s.stats.enter()
		answered := &onAnswer{ResponseWriter: w, fn: s.stats.leave}
		defer answered.done()
		w = answered
		latency, action := s.decide(time.Now())
		if latency > 0 && !sleepCtx(r.Context(), latency) {
			return // the client left; nobody reads an answer
		}
		switch action {
		case faultDown:
			s.stats.fault()
			writeError(w, http.StatusServiceUnavailable, "service unavailable (injected fault: server down)")
		case faultError:
			s.stats.fault()
			writeError(w, http.StatusServiceUnavailable, "service unavailable (injected fault: error rate)")
		case faultThrottle:
			s.stats.fault()
			writeError(w, http.StatusTooManyRequests, "too many requests (injected fault: throttle rate)")
		case faultHang:
			s.stats.fault()
			// The server notices a client that hangs up only once the
			// body has been read, so read it (and throw it away) first.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-s.hungRelease():
				writeError(w, http.StatusServiceUnavailable, "service unavailable (injected fault: shutting down)")
			}
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// hungRelease returns the channel that hung requests wait on.
func (s *Server) hungRelease() <-chan struct{} {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.release
}

// releaseHung ends every request hung by TimeoutRate, for shutdown.
func (s *Server) releaseHung() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	close(s.release)
	s.release = make(chan struct{})
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// faultsJSON is the wire form of Faults for /mock/faults. Durations are Go
// duration strings; down_for (PUT only) sets down_until to now + down_for.
type faultsJSON struct {
	Latency     string  `json:"latency"`
	ErrorRate   float64 `json:"error_rate"`
	TimeoutRate float64 `json:"timeout_rate"`
	// ThrottleRate is answered 429.
	ThrottleRate float64    `json:"throttle_rate"`
	DownUntil    *time.Time `json:"down_until,omitempty"`
	DownFor      string     `json:"down_for,omitempty"`
}

func (s *Server) getFaults(w http.ResponseWriter, _ *http.Request) {
	f := s.currentFaults()
	out := faultsJSON{Latency: f.Latency.String(), ErrorRate: f.ErrorRate, TimeoutRate: f.TimeoutRate, ThrottleRate: f.ThrottleRate}
	if !f.DownUntil.IsZero() {
		out.DownUntil = &f.DownUntil
	}
	writeJSON(w, http.StatusOK, out)
}

// putFaults replaces all faults; omitted fields mean no such fault.
func (s *Server) putFaults(w http.ResponseWriter, r *http.Request) {
	body, release, ok := s.readBody(w, r)
	if !ok {
		return
	}
	defer release()
	f, err := parseFaults(body, time.Now())
	if err != nil {
		s.writeInputError(w, r, "set faults", err)
		return
	}
	s.SetFaults(f)
	s.log.InfoContext(r.Context(), "faults changed", slog.Duration("latency", f.Latency),
		slog.Float64("error_rate", f.ErrorRate), slog.Float64("timeout_rate", f.TimeoutRate), slog.Float64("throttle_rate", f.ThrottleRate),
		slog.Time("down_until", f.DownUntil))
	s.getFaults(w, r)
}

func parseFaults(body []byte, now time.Time) (Faults, error) {
	var in faultsJSON
	var f Faults
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return f, badInput("invalid faults: %v", err)
	}
	if in.Latency != "" {
		d, err := time.ParseDuration(in.Latency)
		if err != nil || d < 0 {
			return f, badInput("latency %q is not a non-negative Go duration such as 250ms", in.Latency)
		}
		f.Latency = d
	}
	for _, rate := range []struct {
		name string
		v    float64
	}{{"error_rate", in.ErrorRate}, {"timeout_rate", in.TimeoutRate}, {"throttle_rate", in.ThrottleRate}} {
		if rate.v < 0 || rate.v > 1 {
			return f, badInput("%s %v is not between 0 and 1", rate.name, rate.v)
		}
	}
	f.ErrorRate, f.TimeoutRate, f.ThrottleRate = in.ErrorRate, in.TimeoutRate, in.ThrottleRate
	if in.DownUntil != nil {
		f.DownUntil = *in.DownUntil
	}
	if in.DownFor != "" {
		d, err := time.ParseDuration(in.DownFor)
		if err != nil || d < 0 {
			return f, badInput("down_for %q is not a non-negative Go duration such as 30s", in.DownFor)
		}
		f.DownUntil = now.Add(d)
	}
	return f, nil
}

// onAnswer calls fn once, when the handler starts its answer (or returns
// without one).
type onAnswer struct {
	http.ResponseWriter
	fn   func()
	once sync.Once
}

func (a *onAnswer) done() { a.once.Do(a.fn) }

func (a *onAnswer) WriteHeader(code int) {
	a.done()
	a.ResponseWriter.WriteHeader(code)
}

func (a *onAnswer) Write(b []byte) (int, error) {
	a.done()
	return a.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (a *onAnswer) Unwrap() http.ResponseWriter { return a.ResponseWriter }
