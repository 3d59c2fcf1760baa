package forwarder

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// How often SOAR is checked while the forwarder runs: seldom while it is
// fine, often while it is not, so that a fix shows quickly.
const (
	probeInterval       = 30 * time.Second
	probeFailedInterval = 3 * time.Second
)

// probe checks SOAR at start and then every probeInterval: that it answers,
// that the credentials work and that the label exists. A problem shows in
// /readyz and in the log before the first alert needs SOAR, and
// falco_phantom_phantom_up tells whether SOAR is reachable even when no
// alert comes.
func (f *Forwarder) probe(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		err := f.checkSOAR(ctx)
		if ctx.Err() != nil {
			return
		}
		prev := f.probeErr.Swap(&err)
		switch {
		case err != nil && (prev == nil || *prev == nil || (*prev).Error() != err.Error()):
			msg := "SOAR check failed; will check again"
			if isBlocking(err) {
				msg = "SOAR refuses every request until this is fixed; alerts are held until then"
			}
			f.log.Warn(msg, "error", err)
		case err == nil && prev != nil && *prev != nil:
			f.log.Info("SOAR check passed again")
		}
		if err != nil {
			f.metrics.phantomUp.Set(0)
			if p := f.pipe.Load(); p != nil && phantom.KindOf(err) == phantom.KindTransient {
				// SOAR may come back with other data (a restore).
				p.cases.distrust()
			}
			timer.Reset(probeFailedInterval)
		} else {
			f.metrics.phantomUp.Set(1)
			timer.Reset(probeInterval)
		}
	}
}

func (f *Forwarder) checkSOAR(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Phantom.Timeout)
	defer cancel()
	// Its requests count against the requests in flight, but do not wait
	// out a pause: the probe is how a recovered SOAR is noticed soon, and
	// its answer ends (or lengthens) the pause.
	if p := f.pipe.Load(); p != nil {
		t, err := p.flow.acquireDuringPause(ctx)
		if err != nil {
			return err
		}
		defer func() { p.flow.release(t, outcomeOf(err)) }()
	}
	if _, err := f.client.Version(ctx); err != nil {
		return err
	}
	labels, err := f.client.Labels(ctx)
	if err != nil || len(labels) == 0 {
		// Not every SOAR version lists labels the same way: no verdict.
		return nil
	}
	if !slices.Contains(labels, f.cfg.Phantom.Label) {
		return &phantom.Error{Op: "GET /rest/container_options", Kind: phantom.KindConfig,
			Message: fmt.Sprintf("%s is not a known label.", f.cfg.Phantom.Label)}
	}
	return nil
}
