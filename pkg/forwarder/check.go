package forwarder

import (
	"context"
	"sync"
)

// checks coalesces the checks of cached case ids the senders need (see
// caseIDs): one listing request answers for every case waiting when it
// starts, up to maxCheckIDs, so that a thousand cases whose ids stop
// being trusted at once cost a handful of requests, not a thousand round
// trips.
type checks struct {
	p *pipeline

	mu      sync.Mutex
	waiting map[string][]chan error
	running bool
}

// check returns once SOAR has confirmed cse's cached id (or it was
// forgotten: it held another case), at once when the id is trusted or not
// known, or with the error of the request.
func (c *checks) check(ctx context.Context, cse string) error {
	if _, known, trusted := c.p.cases.get(cse); !known || trusted {
		return nil
	}
	answer := make(chan error, 1)
	c.mu.Lock()
	if c.waiting == nil {
		c.waiting = map[string][]chan error{}
	}
	c.waiting[cse] = append(c.waiting[cse], answer)
	start := !c.running
	c.running = true
	c.mu.Unlock()
	if start {
		c.p.senders.Add(1)
		go c.run(ctx)
	}
	select {
	case err := <-answer:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run makes check requests until nobody waits.
func (c *checks) run(ctx context.Context) {
	defer c.p.senders.Done()
	for {
		c.mu.Lock()
		var cases []string
		var answers [][]chan error
		for cse, chans := range c.waiting {
			if len(cases) == maxCheckIDs {
				break
			}
			cases, answers = append(cases, cse), append(answers, chans)
			delete(c.waiting, cse)
		}
		if len(cases) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		t, err := c.p.flow.acquire(ctx)
		if err == nil {
			err = c.p.checkCases(ctx, cases)
			c.p.flow.release(t, outcomeOf(err))
		}
		for _, chans := range answers {
			for _, ch := range chans {
				ch <- err
			}
		}
	}
}
