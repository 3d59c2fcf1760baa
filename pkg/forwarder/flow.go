package forwarder

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// flow bounds the requests to SOAR that are in flight at once, and makes
// them back off together when SOAR pushes back.
//
// The bound starts at max and adapts the way TCP's congestion window does
// (additive increase, multiplicative decrease): every answered request raises it by
// 1/limit, so by about one per round trip, up to max; a request SOAR
// pushes back on (429, 503, a timeout) halves it, at most once per
// cool-down, down to one. A failed request also pauses every request for
// an exponential, jittered while (longer when SOAR refuses the set-up), so
// that a struggling or down SOAR sees one request per pause, not one per
// case.
type flow struct {
	max     int
	metrics *Metrics
	now     func() time.Time

	mu       sync.Mutex
	limit    float64
	inFlight int
	waiters  []chan struct{} // FIFO of acquires waiting for a slot
	// pausedUntil: no request starts before then.
	pausedUntil time.Time
	// failures counts consecutive rounds with a failed request; a round
	// ends when a failure sets a pause (round counts them), so that the
	// requests in flight when SOAR went down lengthen the pause once.
	failures     int
	round        uint64
	lastDecrease time.Time
}

// ticket is a slot taken by acquire, to be given back with release.
type ticket struct{ round uint64 }

// outcome is how SOAR answered a request, for the flow.
type outcome int

const (
	answered  outcome = iota // SOAR answered (success, or a refusal of this content)
	pushback                 // 429, 503, 408, a timeout: SOAR is overloaded
	failed                   // down, unreachable, 5xx: retry after a pause
	blocked                  // refuses every request until the set-up is fixed
	cancelled                // the request was given up (shutdown)
)

// decreaseCooldown is the least time between two decreases: one burst of
// pushback, answered by many requests in flight, halves the limit once.
const decreaseCooldown = time.Second

// newFlow starts at the most requests in flight: nothing says SOAR cannot
// take them until it pushes back.
func newFlow(max int, metrics *Metrics) *flow {
	f := &flow{max: max, metrics: metrics, now: time.Now, limit: float64(max)}
	metrics.concurrencyLimit.Set(float64(max))
	return f
}

// acquire waits until no pause is in effect and a slot is free, then takes
// it. It returns ctx's error when ctx ends first.
func (f *flow) acquire(ctx context.Context) (ticket, error) { return f.take(ctx, false) }

// acquireDuringPause waits for a slot only: the probe that tells when SOAR
// is back must not wait out the pause.
func (f *flow) acquireDuringPause(ctx context.Context) (ticket, error) { return f.take(ctx, true) }

func (f *flow) take(ctx context.Context, duringPause bool) (ticket, error) {
	for {
		f.mu.Lock()
		if wait := f.pausedUntil.Sub(f.now()); wait > 0 && !duringPause {
			f.mu.Unlock()
			if !sleepCtx(ctx, wait) {
				return ticket{}, ctx.Err()
			}
			continue
		}
		if f.inFlight < int(f.limit) && len(f.waiters) == 0 {
			f.inFlight++
			f.metrics.inFlight.Set(float64(f.inFlight))
			t := ticket{f.round}
			f.mu.Unlock()
			return t, nil
		}
		ready := make(chan struct{})
		f.waiters = append(f.waiters, ready)
		f.mu.Unlock()
		select {
		case <-ready:
			// Woken with a slot taken for it; a pause set meanwhile still
			// holds it back.
			f.mu.Lock()
			wait, t := f.pausedUntil.Sub(f.now()), ticket{f.round}
			f.mu.Unlock()
			if wait <= 0 || duringPause {
				return t, nil
			}
			f.release(t, cancelled)
			if !sleepCtx(ctx, wait) {
				return ticket{}, ctx.Err()
			}
		case <-ctx.Done():
			f.mu.Lock()
			for i, w := range f.waiters {
				if w == ready {
					f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
					f.mu.Unlock()
					return ticket{}, ctx.Err()
				}
			}
			f.mu.Unlock()
			// A slot was handed over just now: give it on.
			f.release(ticket{}, cancelled)
			return ticket{}, ctx.Err()
		}
	}
}

// release gives the slot back and adapts the limit and the pause to how
// SOAR answered.
func (f *flow) release(t ticket, o outcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	switch o {
	case answered:
		if t.round == f.round {
			// Answered after the last pause was set: SOAR is back.
			f.failures, f.pausedUntil = 0, time.Time{}
		}
		f.limit = min(float64(f.max), f.limit+1/f.limit)
	case pushback, failed, blocked:
		if t.round == f.round {
			// The first failure of its round: a longer pause. Failures of
			// requests that started before the pause was set add nothing.
			f.failures++
			f.round++
			f.pausedUntil = now.Add(backoff(f.failures, o == blocked))
		}
		if o == pushback && now.Sub(f.lastDecrease) >= decreaseCooldown {
			f.limit = max(1, f.limit/2)
			f.lastDecrease = now
		}
	}
	f.inFlight--
	// Hand free slots to the waiters, in turn.
	for f.inFlight < int(f.limit) && len(f.waiters) > 0 {
		w := f.waiters[0]
		f.waiters = f.waiters[1:]
		f.inFlight++
		close(w)
	}
	f.metrics.inFlight.Set(float64(f.inFlight))
	f.metrics.concurrencyLimit.Set(float64(int(f.limit)))
}

// outcomeOf says what an error from SOAR means for the flow.
func outcomeOf(err error) outcome {
	if err == nil {
		return answered
	}
	if errors.Is(err, context.Canceled) {
		return cancelled
	}
	var pe *phantom.Error
	if !errors.As(err, &pe) {
		return failed
	}
	switch pe.Kind {
	case phantom.KindAuth, phantom.KindConfig:
		return blocked
	case phantom.KindRejected, phantom.KindNotFound:
		return answered
	}
	switch {
	case pe.Status == http.StatusTooManyRequests || pe.Status == http.StatusServiceUnavailable || pe.Status == http.StatusRequestTimeout:
		return pushback
	case pe.Status == 0 && errors.Is(pe.Err, context.DeadlineExceeded):
		return pushback // the client's timeout: SOAR is too slow
	}
	return failed
}

// backoff is the pause before attempt+1: exponential with jitter, from
// 100 ms up to 30 s, or from 2 s up to 60 s while SOAR refuses everything.
func backoff(attempt int, blocking bool) time.Duration {
	base, limit := 100*time.Millisecond, 30*time.Second
	if blocking {
		base, limit = 2*time.Second, 60*time.Second
	}
	d := base << min(attempt-1, 16)
	if d > limit || d <= 0 {
		d = limit
	}
	// Full jitter on the upper half, so replicas do not retry in step.
	return d/2 + rand.N(d/2+1)
}
