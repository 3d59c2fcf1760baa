package forwarder

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// caseQueues holds the alerts waiting to be sent, by case. A queue exists
// while its case has a sender.
type caseQueues struct {
	mu sync.Mutex
	m  map[string]*caseQueue
}

type caseQueue struct {
	cse   string
	items []*item
}

// add queues items for cse. It returns the queue, and whether it is new:
// then the caller starts its sender.
func (c *caseQueues) add(cse string, items []*item) (*caseQueue, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*caseQueue{}
	}
	q, ok := c.m[cse]
	if !ok {
		q = &caseQueue{cse: cse}
		c.m[cse] = q
	}
	q.items = append(q.items, items...)
	return q, !ok
}

// take returns up to n queued items of q. When none is left, q is removed
// (its sender ends) and ok is false.
func (c *caseQueues) take(q *caseQueue, n int) (items []*item, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(q.items) == 0 {
		delete(c.m, q.cse)
		return nil, false
	}
	k := min(n, len(q.items))
	items = slices.Clone(q.items[:k])
	q.items = q.items[k:]
	return items, true
}

// putBack puts items in front of q, to be sent first.
func (c *caseQueues) putBack(q *caseQueue, items []*item) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q.items = append(slices.Clone(items), q.items...)
}

// drain removes q and returns what it held.
func (c *caseQueues) drain(q *caseQueue) []*item {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, q.cse)
	items := q.items
	q.items = nil
	return items
}

// dispatch queues each grouped item for its case, starting the senders of
// cases that have none.
func (p *pipeline) dispatch(ctx context.Context, items []*item) {
	byCase := map[string][]*item{}
	var order []string
	for _, it := range items {
		if it.cse == "" || it.done {
			continue
		}
		if _, seen := byCase[it.cse]; !seen {
			order = append(order, it.cse)
		}
		byCase[it.cse] = append(byCase[it.cse], it)
	}
	if len(order) == 0 {
		return
	}
	for _, cse := range order {
		if q, start := p.queues.add(cse, byCase[cse]); start {
			p.senders.Add(1)
			go p.send(ctx, q)
		}
	}
}

// send sends q's alerts until none is left, one request at a time: each
// takes what is queued then (up to the batch size) once the flow gives it
// a slot. What SOAR did not take is tried again after a backoff of its
// own (and any pause of the flow). When ctx ends, what is left is given
// back.
func (p *pipeline) send(ctx context.Context, q *caseQueue) {
	defer p.senders.Done()
	for attempt := 0; ; {
		// The check first, holding no slot: the check requests need one.
		checkErr := p.checks.check(ctx, q.cse)
		t, err := p.flow.acquire(ctx)
		if err != nil {
			p.giveBack(q)
			return
		}
		items, ok := p.queues.take(q, p.batchSize)
		if !ok {
			p.flow.release(t, cancelled)
			return
		}
		if err = checkErr; err == nil {
			err = p.store(ctx, q.cse, items)
			p.flow.release(t, outcomeOf(err))
		} else {
			p.flow.release(t, cancelled) // the check's own outcome counted
		}
		pending := slices.DeleteFunc(items, func(it *item) bool { return it.done })
		if len(pending) == 0 {
			attempt = 0
			continue
		}
		p.queues.putBack(q, pending)
		if ctx.Err() != nil {
			p.giveBack(q)
			return
		}
		attempt++
		p.metrics.retried.Add(float64(len(pending)))
		wait := backoff(attempt, isBlocking(err))
		if outcomeOf(err) == answered {
			wait = 0 // the case was deleted in SOAR: open it again at once
		}
		p.warnRetry(err, len(pending), wait)
		if !sleepCtx(ctx, wait) {
			p.giveBack(q)
			return
		}
	}
}

// giveBack gives back every alert still queued for q's case.
func (p *pipeline) giveBack(q *caseQueue) {
	for _, it := range p.queues.drain(q) {
		it.msg.nak()
	}
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

// store stores the items of one case: it creates the case with the items
// inline when its id is not known yet, and adds them to it otherwise. It
// returns the error that held items back, if any.
func (p *pipeline) store(ctx context.Context, cse string, items []*item) error {
	arts := make([]phantom.Artifact, len(items))
	for i, it := range items {
		// Built when sent, not kept while the item waits: less memory
		// held for a backlog.
		arts[i] = artifact(it.ev, it.msg.Data, it.id, true)
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
			p.log.Info("case opened", "case_id", res.ID, "rule", items[0].ev.Rule, "hostname", items[0].ev.Hostname,
				"alerts", len(items))
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
