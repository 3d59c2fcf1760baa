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
// stores the requests the forwarder sent for w, encoded beforehand and
// sent with up to inFlight requests at once, and how many requests that
// was.
func mockLimit(ctx context.Context, dir string, w *workload, reqs []request, inFlight int) (float64, int, error) {
	s, url, stop, err := startMock(ctx, dir, 0, nil)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	plan, err := planRequests(w, reqs)
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

// request is one write request as the forwarder sent it.
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

// sentRequests reads back from the mock SOAR at url the artifacts the
// forwarder stored for w, in the order they were stored, and splits them
// into the requests that carried them.
func sentRequests(ctx context.Context, url string, w *workload) ([]request, error) {
	client, err := phantom.New(phantom.Config{BaseURL: url,
		Credentials: phantom.StaticCredentials{User: soarUser, Password: soarPassword}})
	if err != nil {
		return nil, err
	}
	var arts []phantom.Artifact
	for page := 0; ; page++ {
		p, err := client.Artifacts(ctx, phantom.Query{Page: page, PageSize: 2000, Sort: "id", Order: "asc"})
		if err != nil {
			return nil, fmt.Errorf("read back the artifacts: %w", err)
		}
		arts = append(arts, p.Data...)
		if page+1 >= p.NumPages {
			return splitRequests(arts, w)
		}
	}
}

// splitRequests splits the artifacts stored for w, in id order, into the
// requests that carried them. A request's artifacts are stored in one
// transaction, so with consecutive ids, and SOAR's convention, which the
// forwarder follows, sets run_automation on the last artifact of each
// request only. The first request of a case created it.
func splitRequests(arts []phantom.Artifact, w *workload) ([]request, error) {
	index := make(map[string]int, len(w.events))
	for i, ev := range w.events {
		index[forwarder.ArtifactID(ev.ID())] = i
	}
	var reqs []request
	created := map[int64]bool{} // containers
	var cur *request
	for _, a := range arts {
		i, ok := index[a.SourceDataIdentifier]
		if !ok {
			return nil, fmt.Errorf("artifact %d (%s) is no alert of the workload", a.ID, a.SourceDataIdentifier)
		}
		inc := incidentOf(i, w.incidents)
		switch {
		case cur == nil:
			cur = &request{incident: inc, create: !created[a.Container]}
			created[a.Container] = true
		case cur.incident != inc:
			return nil, fmt.Errorf("artifact %d: a request would carry alerts of incidents %d and %d", a.ID, cur.incident, inc)
		}
		cur.alerts = append(cur.alerts, i)
		if a.RunAutomation {
			reqs = append(reqs, *cur)
			cur = nil
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("the last %d artifacts end no request (none has run_automation set)", len(cur.alerts))
	}
	return reqs, nil
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

func planRequests(w *workload, reqs []request) (*requestPlan, error) {
	p := &requestPlan{reqs: reqs, arts: make([]phantom.Artifact, len(w.events))}
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
		ct.Artifacts[len(ct.Artifacts)-1].RunAutomation = true
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
		list[len(list)-1].RunAutomation = true
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
