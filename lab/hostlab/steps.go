package hostlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/poll"
)

// step is one part of bringing a lab up: start something, then wait until
// it works. Up is a list of steps run in order by runSteps.
type step struct {
	// name names the step in errors: "etcd", "images"...
	name string
	// doing is the progress line printed before start ("starting etcd");
	// "" prints none.
	doing string
	// start starts what the step runs (nil: nothing to start) and returns
	// the daemon it started, if any: a wait fails at once when it exits.
	start func(ctx context.Context) (*started, error)
	// waitFor says what ready tells ("etcd to be healthy"); ready is
	// polled until it returns nil (nil: no wait).
	waitFor string
	ready   func(ctx context.Context) error
}

// Polling of a step's ready check: every waitInterval, each call bounded
// by checkTimeout.
const (
	waitInterval = 200 * time.Millisecond
	checkTimeout = 5 * time.Second
)

// errExited ends a wait whose daemon exited.
var errExited = errors.New("the daemon exited")

// stepRunner runs steps, printing their progress to w; each wait lasts at
// most timeout.
type stepRunner struct {
	l       layout
	w       io.Writer
	timeout time.Duration
}

// run runs steps in order and stops at the first that fails, saying which.
func (r *stepRunner) run(ctx context.Context, steps []step) error {
	for _, st := range steps {
		if err := r.runStep(ctx, st); err != nil {
			return fmt.Errorf("step %s failed: %w", st.name, err)
		}
	}
	return nil
}

func (r *stepRunner) runStep(ctx context.Context, st step) error {
	var proc *started
	if st.start != nil {
		if st.doing != "" {
			logf(r.w, "hostlab: %s", st.doing)
		}
		var err error
		if proc, err = st.start(ctx); err != nil {
			return err
		}
	}
	if st.ready == nil {
		return nil
	}
	return r.wait(ctx, proc, st.waitFor, st.ready)
}

// wait polls ready until it succeeds, and prints how long that took. It
// fails at once when the daemon proc exits, with the end of its log, and
// after the timeout with ready's last error.
func (r *stepRunner) wait(ctx context.Context, proc *started, what string, ready func(context.Context) error) error {
	begin := time.Now()
	wctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if proc != nil {
		go func() {
			select {
			case <-proc.exited:
				stop(errExited)
			case <-wctx.Done():
			}
		}()
	}
	err := poll.Until(wctx, r.timeout, waitInterval, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		defer cancel()
		return ready(cctx)
	})
	switch {
	case err == nil:
		logf(r.w, "hostlab:   ok after %s: %s", time.Since(begin).Round(10*time.Millisecond), what)
		return nil
	case proc == nil:
		return fmt.Errorf("waiting for %s: %w", what, err)
	case errors.Is(context.Cause(wctx), errExited):
		return fmt.Errorf("%s exited (%v) while waiting for %s; end of %s:\n%s",
			proc.name, proc.err, what, r.l.log(proc.name), logTail(r.l, proc.name, 25))
	case errors.Is(err, poll.ErrTimeout):
		return fmt.Errorf("waiting for %s: %w; end of %s:\n%s", what, err, r.l.log(proc.name), logTail(r.l, proc.name, 25))
	default:
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
}
