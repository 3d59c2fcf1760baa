package forwarder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// pipeline turns batches of messages into SOAR containers and artifacts.
// It is shared by all sources and workers.
type pipeline struct {
	client      *phantom.Client
	label       string
	grouper     *grouper
	deadLetters *deadLetterQueue
	metrics     *Metrics
	log         *slog.Logger

	// cases maps a case's source_data_identifier to its SOAR id.
	cases *caseIDs
	// opening holds a lock per case being created, so that workers do not
	// all create the same case at once.
	opening sync.Map

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
	art  phantom.Artifact
	cse  string // case source_data_identifier
	done bool
}

// process settles every message of the batch: stored in SOAR, retrying as
// long as it takes, or handed to the dead-letter queue. It returns early
// only when ctx ends; the messages not settled then are given back.
//
// Batches are parsed and delivered in parallel, but their alerts are
// assigned to incidents in the order the batches were taken: process waits
// for prev to be closed before grouping and closes grouped after. An alert
// that anchored an incident before an earlier alert of the same incident
// was grouped would otherwise split the incident in two cases.
func (p *pipeline) process(ctx context.Context, batch []*Message, prev <-chan struct{}, grouped chan<- struct{}) {
	p.metrics.received.Add(float64(len(batch)))
	items := make([]*item, 0, len(batch))
	for _, m := range batch {
		it, dl := p.prepare(m)
		if dl != nil {
			p.deadLetters.add(m, dl)
			continue
		}
		items = append(items, it)
	}
	<-prev
	p.group(ctx, items)
	close(grouped)
	p.deliverAll(ctx, items)
}

// group assigns each item to its incident's case. An item it cannot assign
// (the anchor store is unavailable) is assigned when it is retried.
func (p *pipeline) group(ctx context.Context, items []*item) {
	for _, it := range items {
		if cse, err := p.grouper.caseFor(ctx, it.ev); err == nil {
			it.cse = cse
		}
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
	// Parse accepted m.Data, so it is valid JSON.
	return &item{msg: m, ev: ev, art: artifact(ev, m.Data, ev.ID(), true)}, nil
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

func (p *pipeline) deliverAll(ctx context.Context, items []*item) {
	for attempt := 1; ; attempt++ {
		err := p.attempt(ctx, items)
		pending := items[:0]
		for _, it := range items {
			if !it.done {
				pending = append(pending, it)
			}
		}
		items = pending
		if len(items) == 0 {
			return
		}
		p.metrics.retried.Add(float64(len(items)))
		waitFor := backoff(attempt, isBlocking(err))
		p.warnRetry(err, len(items), waitFor)
		if !p.wait(ctx, waitFor, items) {
			for _, it := range items {
				it.msg.nak()
			}
			return
		}
	}
}

// attempt tries once to store every pending item, one request per case.
// It returns the error that held items back, if any.
func (p *pipeline) attempt(ctx context.Context, items []*item) error {
	var order []string
	byCase := map[string][]*item{}
	var firstErr error
	for _, it := range items {
		if it.cse == "" {
			cse, err := p.grouper.caseFor(ctx, it.ev)
			if err != nil {
				firstErr = cmpErr(firstErr, fmt.Errorf("group event: %w", err))
				continue
			}
			it.cse = cse
		}
		if _, seen := byCase[it.cse]; !seen {
			order = append(order, it.cse)
		}
		byCase[it.cse] = append(byCase[it.cse], it)
	}
	if err := p.checkCases(ctx, order); err != nil {
		return cmpErr(firstErr, err)
	}
	for _, cse := range order {
		if err := p.send(ctx, cse, byCase[cse]); err != nil {
			firstErr = cmpErr(firstErr, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return firstErr
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

// maxCheckIDs bounds the ids of one check request (they go in its URL).
const maxCheckIDs = 200

// checkCases asks SOAR whether the cached ids of cases it has not
// confirmed recently (see caseIDs) still hold those cases. An id that
// holds another case now, or nothing, is forgotten: the case is then found
// by its source_data_identifier, or opened again.
func (p *pipeline) checkCases(ctx context.Context, cases []string) error {
	var ids []int64
	caseOf := map[int64]string{}
	for _, cse := range cases {
		if id, known, trusted := p.cases.get(cse); known && !trusted {
			ids = append(ids, id)
			caseOf[id] = cse
		}
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxCheckIDs)]
		ids = ids[len(chunk):]
		p.metrics.requests.WithLabelValues("check_cases").Inc()
		page, err := p.client.Containers(ctx, phantom.Query{PageSize: 0, Filters: map[string]any{"id__in": chunk}})
		if err != nil {
			return p.phantomFailed(fmt.Errorf("check cached case ids: %w", err))
		}
		holds := make(map[int64]string, len(page.Data))
		for _, c := range page.Data {
			holds[c.ID] = c.SourceDataIdentifier
		}
		for _, id := range chunk {
			cse := caseOf[id]
			if holds[id] == cse {
				p.cases.set(cse, id)
				continue
			}
			p.cases.forget(cse)
			p.log.Info("a cached case id no longer holds its case in SOAR (SOAR lost or replaced data); finding the case again",
				"case_id", id, "case", cse, "holds", holds[id])
		}
	}
	return nil
}

// send stores the items of one case: it creates the case with the items
// inline when its id is not known yet, and adds them to it otherwise.
// Workers creating the same case take turns, so it is created once.
func (p *pipeline) send(ctx context.Context, cse string, items []*item) error {
	if _, known, _ := p.cases.get(cse); !known {
		lock, _ := p.opening.LoadOrStore(cse, &sync.Mutex{})
		lock.(*sync.Mutex).Lock()
		defer func() {
			lock.(*sync.Mutex).Unlock()
			p.opening.Delete(cse)
		}()
	}
	return p.store(ctx, cse, items)
}

func (p *pipeline) store(ctx context.Context, cse string, items []*item) error {
	arts := make([]phantom.Artifact, len(items))
	for i, it := range items {
		arts[i] = it.art
		arts[i].RunAutomation = i == len(items)-1
	}
	id, known, _ := p.cases.get(cse)
	var results []phantom.ArtifactResult
	if !known {
		ct := Container(items[0].ev, items[0].msg.Data, p.label, cse)
		ct.Artifacts = arts
		p.metrics.requests.WithLabelValues("create_container").Inc()
		res, err := p.client.CreateContainer(ctx, ct)
		if err != nil {
			return p.rejected(ctx, cse, items, p.phantomFailed(err))
		}
		p.cases.set(cse, res.ID)
		id = res.ID
		if !res.Existing {
			p.metrics.cases.Inc()
			results = res.Artifacts
		}
	}
	if results == nil {
		for i := range arts {
			arts[i].ContainerID = id
		}
		p.metrics.requests.WithLabelValues("create_artifacts").Inc()
		res, err := p.client.CreateArtifacts(ctx, arts)
		if err != nil {
			return p.rejected(ctx, cse, items, p.phantomFailed(err))
		}
		results = res
	}
	p.phantomOK()
	var firstErr error
	for i, r := range results {
		it := items[i]
		switch {
		case r.Err == nil:
			outcome := "new"
			if r.Existing {
				outcome = "existing"
			}
			p.settle(it, outcome)
		case phantom.KindOf(r.Err) == phantom.KindRejected:
			p.deadLetters.add(it.msg, &DeadLetterError{Reason: ReasonPhantomRejected, Detail: r.Err.Error()})
			it.done = true
		case phantom.KindOf(r.Err) == phantom.KindNotFound:
			// The case was deleted in SOAR: forget its id and open it again.
			p.cases.forget(cse)
			firstErr = cmpErr(firstErr, r.Err)
		default:
			p.metrics.phantomErrs.WithLabelValues(phantom.KindOf(r.Err).String()).Inc()
			firstErr = cmpErr(firstErr, r.Err)
		}
	}
	return firstErr
}

// rejected handles a request SOAR refused as a whole. A refusal of this
// request's content (not of the set-up) is narrowed down by sending the
// items one by one; an item refused alone is dead-lettered. Other errors
// are returned for a retry.
func (p *pipeline) rejected(ctx context.Context, cse string, items []*item, err error) error {
	if phantom.KindOf(err) != phantom.KindRejected {
		return err
	}
	if len(items) == 1 {
		p.deadLetters.add(items[0].msg, &DeadLetterError{Reason: ReasonPhantomRejected, Detail: err.Error()})
		items[0].done = true
		return nil
	}
	var firstErr error
	for _, it := range items {
		firstErr = cmpErr(firstErr, p.store(ctx, cse, []*item{it}))
	}
	return firstErr
}

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

// wait sleeps d, telling the sources of the held items every few seconds
// that they are still being worked on. It returns false when ctx ends.
func (p *pipeline) wait(ctx context.Context, d time.Duration, held []*item) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-tick.C:
			for _, it := range held {
				it.msg.inProgress()
			}
		}
	}
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
