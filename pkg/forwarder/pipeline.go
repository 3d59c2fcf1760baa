package forwarder

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// pipeline turns batches of messages into SOAR containers and artifacts.
// It is shared by all sources and workers.
//
// Workers parse a batch, assign its alerts to their incidents' cases (in
// the order the batches were taken) and put each alert in its case's
// queue. Each case with alerts queued has one sender, which takes all that
// is queued (up to the batch size) once it has a request slot, and sends
// it in one request: cases are sent concurrently, bounded by the flow, and
// one case's requests go one after the other, so a case is created before
// anything is added to it, and alerts that arrive while its request is in
// flight go together in the next one. Nothing waits to be batched: the
// first alert of a case is sent as soon as a slot is free.
type pipeline struct {
	client      *phantom.Client
	label       string
	batchSize   int
	grouper     *grouper
	deadLetters *deadLetterQueue
	metrics     *Metrics
	log         *slog.Logger
	flow        *flow
	leases      *leases

	// cases maps a case's source_data_identifier to its SOAR id.
	cases *caseIDs
	// queues are the alerts waiting to be sent, by case.
	queues caseQueues
	// checks coalesces the checks of cached case ids.
	checks checks
	// senders counts the goroutines that send or retry alerts.
	senders sync.WaitGroup

	// blocked is set while SOAR refuses every request (auth or config),
	// for the readiness check.
	blocked atomic.Pointer[phantom.Error]
	// lastWarn and lastClockWarn rate-limit warnings.
	lastWarn      atomic.Int64
	lastClockWarn atomic.Int64
}

// item is one message on its way.
type item struct {
	msg  *Message
	ev   *falco.Event
	id   string // ev.ID()
	cse  string // case source_data_identifier
	done bool
}

// process hands every message of the batch on: each alert to its case's
// queue, whatever cannot be parsed to the dead-letter queue. It returns
// once that is done; the senders settle the alerts, retrying as long as it
// takes, until ctx ends (then what is not settled is given back).
//
// Batches are parsed in parallel, but their alerts are assigned to
// incidents in the order the batches were taken: process waits for prev to
// be closed before grouping and closes grouped after. An alert that
// anchored an incident before an earlier alert of the same incident was
// grouped would otherwise split the incident in two cases.
func (p *pipeline) process(ctx context.Context, batch []*Message, prev <-chan struct{}, grouped chan<- struct{}) {
	p.metrics.received.Add(float64(len(batch)))
	items := make([]*item, 0, len(batch))
	for _, m := range batch {
		p.leases.hold(m)
		it, dl := p.prepare(m)
		if dl != nil {
			p.deadLetters.add(m, dl)
			continue
		}
		items = append(items, it)
	}
	<-prev
	ungrouped := p.group(ctx, items)
	close(grouped)
	if len(ungrouped) > 0 {
		p.senders.Add(1)
		go p.regroup(ctx, ungrouped)
	}
	p.dispatch(ctx, items)
}

// group assigns each item to its incident's case, and returns those it
// could not assign (the anchor store is unavailable).
func (p *pipeline) group(ctx context.Context, items []*item) (ungrouped []*item) {
	for _, it := range items {
		cse, err := p.grouper.caseFor(ctx, it.ev)
		if err != nil {
			ungrouped = append(ungrouped, it)
			continue
		}
		it.cse = cse
	}
	return ungrouped
}

// regroup retries the grouping of items until it succeeds, then queues
// them; when ctx ends first, they are given back.
func (p *pipeline) regroup(ctx context.Context, items []*item) {
	defer p.senders.Done()
	for attempt := 1; len(items) > 0; attempt++ {
		p.metrics.retried.Add(float64(len(items)))
		p.warnRetry(errors.New("the incident anchor store is unavailable"), len(items), backoff(attempt, false))
		if !sleepCtx(ctx, backoff(attempt, false)) {
			for _, it := range items {
				it.msg.nak()
			}
			return
		}
		var grouped []*item
		grouped, items = items, p.group(ctx, items)
		p.dispatch(ctx, grouped)
	}
}

// prepare parses a message; what cannot be parsed is to be dead-lettered
// for the reason it returns.
func (p *pipeline) prepare(m *Message) (*item, *DeadLetterError) {
	ev, err := falco.Parse(m.Data)
	if err != nil {
		reason := ReasonInvalidEvent
		if errors.Is(err, falco.ErrTooLarge) {
			reason = ReasonTooLarge
		}
		return nil, &DeadLetterError{Reason: reason, Detail: err.Error()}
	}
	if ahead := time.Until(ev.Time); ahead > maxClockSkew {
		p.warnClock(ev, ahead)
	}
	return &item{msg: m, ev: ev, id: ev.ID()}, nil
}

// warnClock says, at most once a minute, that an alert is stamped far
// ahead of this forwarder's clock: its node's clock is probably wrong,
// which makes its times useless to an investigation. Grouping treats such
// alerts as outliers.
func (p *pipeline) warnClock(ev *falco.Event, ahead time.Duration) {
	now := time.Now().UnixNano()
	last := p.lastClockWarn.Load()
	if now-last < int64(time.Minute) || !p.lastClockWarn.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("alert stamped ahead of this forwarder's clock; check the clock of the node that raised it",
		"ahead", ahead.Round(time.Second).String(), "hostname", ev.Hostname, "rule", ev.Rule)
}

// wait waits until every sender is done: everything handed to the
// pipeline is settled or given back.
func (p *pipeline) wait() { p.senders.Wait() }

func (p *pipeline) settle(it *item, outcome string) {
	now := time.Now()
	p.metrics.delivered.WithLabelValues(outcome).Inc()
	p.metrics.latency.Observe(now.Sub(it.msg.Received).Seconds())
	if age := now.Sub(it.ev.Time).Seconds(); age >= 0 {
		p.metrics.eventAge.Observe(age)
	}
	it.done = true
	it.msg.done(nil)
}

func (p *pipeline) phantomFailed(err error) error {
	kind := phantom.KindOf(err)
	p.metrics.phantomErrs.WithLabelValues(kind.String()).Inc()
	p.metrics.phantomUp.Set(0)
	if kind == phantom.KindTransient {
		// SOAR was down or failing: it may have come back with other data.
		p.cases.distrust()
	}
	var pe *phantom.Error
	if isBlocking(err) && errors.As(err, &pe) {
		p.blocked.Store(pe)
	}
	return err
}

func (p *pipeline) phantomOK() {
	p.metrics.phantomUp.Set(1)
	p.blocked.Store(nil)
}

// Blocked returns the error that stops every delivery until an operator
// acts (bad credentials, unknown label, untrusted certificate), or nil.
func (p *pipeline) Blocked() error {
	if e := p.blocked.Load(); e != nil {
		return e
	}
	return nil
}

// cmpErr keeps the more telling of two errors: one that needs an operator
// beats a transient one.
func cmpErr(old, err error) error {
	if old == nil || (isBlocking(err) && !isBlocking(old)) {
		return err
	}
	return old
}

func isBlocking(err error) bool {
	k := phantom.KindOf(err)
	return err != nil && (k == phantom.KindAuth || k == phantom.KindConfig)
}

// warnRetry logs a failed attempt, at most every 10 s for transient errors.
func (p *pipeline) warnRetry(err error, n int, next time.Duration) {
	now := time.Now().UnixNano()
	last := p.lastWarn.Load()
	if !isBlocking(err) && now-last < int64(10*time.Second) {
		return
	}
	if !p.lastWarn.CompareAndSwap(last, now) {
		return
	}
	msg := "SOAR delivery failed; holding the events and retrying"
	if isBlocking(err) {
		msg = "SOAR refuses every request until this is fixed; holding the events and retrying"
	}
	p.log.Warn(msg, "error", err, "events", n, "retry_in", next.Round(time.Millisecond).String())
}
