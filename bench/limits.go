package main

// The limits: how fast NATS and the mock SOAR go on their own with the
// same alerts, so that the forwarder's figures can be read against them.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// natsLimit is the rate at which JetStream hands the alerts to a durable
// pull consumer configured like the forwarder's that only acknowledges.
func natsLimit(ctx context.Context, dir string, w *workload, batch int) (float64, error) {
	n, err := startNATS(dir)
	if err != nil {
		return 0, err
	}
	defer n.close()
	if err := n.preloadStream(ctx, "FALCO", []string{"falco.>"}, w); err != nil {
		return 0, err
	}
	d := forwarder.Defaults().NATS
	cons, err := n.js.CreateOrUpdateConsumer(ctx, "FALCO", jetstream.ConsumerConfig{
		Durable: "only-acks", FilterSubject: d.Subject, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: d.AckWait, MaxDeliver: -1, MaxAckPending: d.MaxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(batch*2, 16<<20))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	start := time.Now()
	for range w.events {
		msg, err := it.Next(jetstream.NextMaxWait(30 * time.Second))
		if err != nil {
			return 0, fmt.Errorf("consume: %w", err)
		}
		if err := msg.Ack(); err != nil {
			return 0, fmt.Errorf("ack: %w", err)
		}
	}
	return float64(len(w.events)) / time.Since(start).Seconds(), nil
}

// mockLimit is the rate at which the mock SOAR (without added latency)
// stores the requests a forwarder sends for w, encoded beforehand and
// sent with inFlight requests at once, and how many requests that was.
func mockLimit(ctx context.Context, dir string, w *workload, batch, inFlight int) (float64, int, error) {
	s, url, stop, err := startMock(ctx, dir, 0, nil)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	plan, err := planRequests(w, batch)
	if err != nil {
		return 0, 0, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlight, MaxConnsPerHost: inFlight}}
	start := time.Now()
	err = inParallel(len(plan.reqs), inFlight, func(k int) error { return plan.send(ctx, client, url, k) })
	elapsed := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if got := s.Stats().ArtifactsCreated; got != int64(len(w.events)) {
		return 0, 0, fmt.Errorf("the mock stored %d artifacts, want %d", got, len(w.events))
	}
	return float64(len(w.events)) / elapsed.Seconds(), len(plan.reqs), nil
}

// request is one write request as the forwarder would send it.
type request struct {
	// create is true for the request that creates its case, with the
	// artifacts inline; the others add artifacts to it.
	create bool
	// incident is the incident (the case) of the alerts.
	incident int
	// alerts are the indexes in the workload of the alerts it carries.
	alerts []int
}

func (r request) path() string {
	if r.create {
		return "/rest/container"
	}
	return "/rest/artifact"
}

// forwarderRequests splits w into the requests a forwarder with the given
// batch size would send if it sent each full batch on its own: per batch,
// one request per case, the first of a case creating it with its
// artifacts inline. (The forwarder may send fewer: a case's sender takes
// everything queued for it, from several batches, up to the batch size.)
func forwarderRequests(w *workload, batch int) []request {
	created := map[int]bool{}
	var reqs []request
	for from := 0; from < len(w.events); from += batch {
		var order []*request
		byInc := map[int]*request{}
		for i := from; i < min(from+batch, len(w.events)); i++ {
			inc := incidentOf(i, w.incidents)
			r := byInc[inc]
			if r == nil {
				r = &request{incident: inc, create: !created[inc]}
				created[inc] = true
				byInc[inc] = r
				order = append(order, r)
			}
			r.alerts = append(r.alerts, i)
		}
		for _, r := range order {
			reqs = append(reqs, *r)
		}
	}
	return reqs
}

// requestPlan is every request of a workload, encoded beforehand where it
// can be: a create request holds all it sends; a request that adds to a
// case needs the case's id, known once the create request is answered.
type requestPlan struct {
	reqs []request
	arts []phantom.Artifact // by alert
	// bodies are the bodies of the create requests, by request.
	bodies [][]byte
	// createOf is, by request, the create request of its case.
	createOf []int
	// caseID holds, by create request, the id of the case it created
	// once it is answered (0 when it failed): every add request of the
	// case takes it and puts it back.
	caseID []chan int64
}

func planRequests(w *workload, batch int) (*requestPlan, error) {
	p := &requestPlan{reqs: forwarderRequests(w, batch), arts: make([]phantom.Artifact, len(w.events))}
	for i, ev := range w.events {
		p.arts[i] = forwarder.Artifact(ev, w.bodies[i])
	}
	p.bodies = make([][]byte, len(p.reqs))
	p.createOf = make([]int, len(p.reqs))
	p.caseID = make([]chan int64, len(p.reqs))
	first := map[int]int{} // incident -> create request
	for k, r := range p.reqs {
		if !r.create {
			p.createOf[k] = first[r.incident]
			continue
		}
		first[r.incident], p.createOf[k] = k, k
		p.caseID[k] = make(chan int64, 1)
		head := r.alerts[0]
		ct := forwarder.Container(w.events[head], w.bodies[head], "events", fmt.Sprintf("falco-case-bench-%d", r.incident))
		for _, i := range r.alerts {
			ct.Artifacts = append(ct.Artifacts, p.arts[i])
		}
		var err error
		if p.bodies[k], err = json.Marshal(ct); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// send posts request k; a request that adds to a case waits for the
// request that created it.
func (p *requestPlan) send(ctx context.Context, c *http.Client, url string, k int) error {
	r := p.reqs[k]
	body := p.bodies[k]
	if !r.create {
		ch := p.caseID[p.createOf[k]]
		id := <-ch
		ch <- id
		list := make([]phantom.Artifact, 0, len(r.alerts))
		for _, i := range r.alerts {
			a := p.arts[i]
			a.ContainerID = id
			list = append(list, a)
		}
		body, _ = json.Marshal(list) // the only encoding in the timed part
	}
	id, err := post(ctx, c, url+r.path(), body)
	if r.create {
		p.caseID[k] <- id // 0 on failure: what waits for it fails too
	}
	return err
}

// inParallel calls do for 0 to n-1, in that order, from workers
// goroutines; a worker stops at its first error. It returns the first
// error.
func inParallel(n, workers int, do func(k int) error) error {
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= n {
					return
				}
				if err := do(k); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}
