package forwarder

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

func TestFlowBoundsRequestsInFlight(t *testing.T) {
	t.Parallel()
	f := newFlow(4, NewMetrics())
	ctx := t.Context()
	var tickets []ticket
	for range 4 {
		tk, err := f.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
	}
	if _, ok := tryAcquire(f); ok {
		t.Fatal("a fifth request got a slot with a limit of 4")
	}
	got := make(chan error, 1)
	go func() {
		tk, err := f.acquire(ctx)
		if err == nil {
			f.release(tk, answered)
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a fifth acquire returned (%v) before a slot was freed", err)
	case <-time.After(50 * time.Millisecond):
	}
	f.release(tickets[0], answered)
	if err := <-got; err != nil {
		t.Fatal(err)
	}

	// Given up while waiting: no slot is lost.
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	tk, err := f.acquire(cctx) // 3 taken, 4th free: must not wait
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire on a full flow = %v, want context.Canceled", err)
	}
	for _, tk := range append(tickets[1:], tk) {
		f.release(tk, answered)
	}
	if f.inFlight != 0 {
		t.Errorf("in flight after every release: %d", f.inFlight)
	}
}

func TestFlowAdditiveIncreaseMultiplicativeDecrease(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	f := newFlow(32, NewMetrics())
	f.now = func() time.Time { return now }
	if f.limit != 32 {
		t.Fatalf("initial limit %v, want the maximum, 32", f.limit)
	}
	f.limit = 8       // as after some pushback
	for range 8 * 4 { // about four round trips at the limit
		tk, _ := tryAcquire(f)
		f.release(tk, answered)
	}
	if f.limit < 11 || f.limit > 12 {
		t.Errorf("limit after 32 answers from 8: %.2f, want about 12 (one more a round trip)", f.limit)
	}
	before := f.limit
	tk1, _ := tryAcquire(f)
	tk2, _ := tryAcquire(f)
	f.release(tk1, pushback)
	f.release(tk2, pushback) // the same burst: no second halving
	if f.limit != max(1, before/2) {
		t.Errorf("limit after a burst of pushback: %.2f, want %.2f", f.limit, before/2)
	}
	now = now.Add(decreaseCooldown)
	f.pausedUntil = time.Time{}
	tk3, _ := tryAcquire(f)
	f.release(tk3, pushback)
	if f.limit != max(1, before/4) {
		t.Errorf("limit after more pushback a cool-down later: %.2f, want %.2f", f.limit, before/4)
	}
	for range 20 {
		f.pausedUntil = time.Time{}
		now = now.Add(decreaseCooldown)
		tk, _ := tryAcquire(f)
		f.release(tk, pushback)
	}
	if f.limit != 1 {
		t.Errorf("limit after a storm of pushback: %.2f, want 1", f.limit)
	}
	for range 600 { // from 1 to 32 at one more a round trip: 1+2+...+31 answers
		f.pausedUntil = time.Time{}
		tk, _ := tryAcquire(f)
		f.release(tk, answered)
	}
	if f.limit != 32 {
		t.Errorf("limit after SOAR answers again: %.2f, want the maximum 32", f.limit)
	}
}

// A failed request pauses every request; the failures of the requests in
// flight when it happened do not lengthen the pause; an answer to a request
// sent after the pause began ends it.
func TestFlowPausesTogether(t *testing.T) {
	t.Parallel()
	f := newFlow(8, NewMetrics())
	a, _ := tryAcquire(f)
	b, _ := tryAcquire(f)
	f.release(a, failed)
	first := f.pausedUntil
	f.release(b, failed)
	if f.failures != 1 || !f.pausedUntil.Equal(first) {
		t.Errorf("after two failures of one round: failures %d, pause changed %v; want 1, unchanged", f.failures, !f.pausedUntil.Equal(first))
	}
	if _, ok := tryAcquire(f); ok {
		t.Fatal("a request got a slot during the pause")
	}
	begin := time.Now()
	c, err := f.acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(begin); waited < 40*time.Millisecond {
		t.Errorf("acquire waited %s during a pause of at least 50ms", waited)
	}
	f.release(c, failed) // the next round fails too: a longer pause
	if f.failures != 2 {
		t.Errorf("failures after a second round: %d, want 2", f.failures)
	}
	d, err := f.acquireDuringPause(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f.release(d, answered)
	if f.failures != 0 || !f.pausedUntil.IsZero() {
		t.Errorf("after an answer: failures %d, paused until %v; want no pause", f.failures, f.pausedUntil)
	}
}

func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]outcome{
		nil: answered,
		&phantom.Error{Kind: phantom.KindTransient, Status: http.StatusTooManyRequests}:      pushback,
		&phantom.Error{Kind: phantom.KindTransient, Status: http.StatusServiceUnavailable}:   pushback,
		&phantom.Error{Kind: phantom.KindTransient, Err: context.DeadlineExceeded}:           pushback,
		&phantom.Error{Kind: phantom.KindTransient, Status: http.StatusInternalServerError}:  failed,
		&phantom.Error{Kind: phantom.KindTransient, Err: errors.New("connection refused")}:   failed,
		&phantom.Error{Kind: phantom.KindAuth, Status: http.StatusUnauthorized}:              blocked,
		&phantom.Error{Kind: phantom.KindRejected, Status: http.StatusRequestEntityTooLarge}: answered,
		context.Canceled: cancelled,
	} {
		if got := outcomeOf(err); got != want {
			t.Errorf("outcomeOf(%v) = %d, want %d", err, got, want)
		}
	}
}

// tryAcquire takes a slot only if one is free, and no pause holds, at once.
func tryAcquire(f *flow) (ticket, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	t, err := f.acquire(ctx)
	return t, err == nil
}
