package forwarder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

// source feeds messages to the workers.
type source struct {
	pipe *pipeline
	run  func(ctx context.Context, out chan<- *Message, ready *atomic.Bool) error
	stop func()
}

// configError is a set-up problem that waiting cannot fix.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// natsProblem says what is wrong with NATS in words an operator can act
// on: a server that cannot be reached (with the client's own reason, such
// as connection refused), or one without JetStream; otherwise err itself.
// A JetStream request to an unreachable server only says that its context
// ended, and one to a server without JetStream that nobody answered.
func natsProblem(nc *nats.Conn, url string, dialErr *error, err error) error {
	switch {
	case !nc.IsConnected():
		why := "not connected"
		if dialErr != nil && *dialErr != nil {
			why = (*dialErr).Error()
		} else if last := nc.LastError(); last != nil {
			why = last.Error()
		}
		return fmt.Errorf("cannot reach NATS at %s: %s", RedactURL(url), why)
	case errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return fmt.Errorf("NATS at %s has no JetStream: start nats-server with -js (or jetstream {} in its configuration; with the NATS chart, config.jetstream.enabled=true), or run the forwarder with NATS_MODE=core, which loses the alerts published while it is down: %w", RedactURL(url), err)
	}
	return err
}

// openSource sets up the mode's source, waiting for NATS as long as needed.
func (f *Forwarder) openSource(ctx context.Context, nc *nats.Conn) (*source, error) {
	if f.cfg.NATS.Mode == ModeCore {
		return f.coreSource(nc), nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	var anchors anchorStore = newMemoryAnchors()
	for attempt := 1; ; attempt++ {
		if nc.IsConnected() {
			err = f.setupJetStream(ctx, js)
		} else {
			err = nats.ErrConnectionClosed // said better by natsProblem
		}
		if err == nil && f.cfg.GroupWindow > 0 {
			anchors, err = openKVAnchors(ctx, js, f.cfg.NATS.GroupBucket, f.cfg.NATS.StreamReplicas)
		}
		if err == nil {
			break
		}
		var ce configError
		if errors.As(err, &ce) {
			return nil, err
		}
		wait := min(time.Duration(attempt)*time.Second, 10*time.Second)
		f.log.Warn("waiting for NATS JetStream", "nats", RedactURL(f.cfg.NATS.URL), "error", natsProblem(nc, f.cfg.NATS.URL, f.natsDialErr.Load(), err), "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	p := f.newPipeline(anchors, &natsDeadLetters{nc: nc, js: js, prefix: f.cfg.NATS.DeadLetterSubject})
	return f.jetStreamSource(js, p), nil
}

func (f *Forwarder) newPipeline(anchors anchorStore, dl deadLetterSink) *pipeline {
	p := &pipeline{
		client: f.client, label: f.cfg.Phantom.Label, batchSize: f.cfg.BatchSize, grouper: newGrouper(f.cfg.GroupWindow, anchors),
		deadLetters: newDeadLetterQueue(dl, f.metrics, f.log), metrics: f.metrics, log: f.log,
		flow: newFlow(f.cfg.MaxInFlight, f.metrics), leases: newLeases(leaseEvery), cases: newCaseIDs(f.caseCheckInterval),
	}
	p.checks.p = p
	return p
}

// setupJetStream makes sure the event stream, the dead-letter stream and
// the durable consumer exist.
func (f *Forwarder) setupJetStream(ctx context.Context, js jetstream.JetStream) error {
	n := f.cfg.NATS
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, n.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        n.Stream,
			Description: "Falco events published by falcosidekick, kept until falco-phantom stored them in SOAR",
			Subjects:    n.StreamSubjects,
			Storage:     jetstream.FileStorage,
			Replicas:    n.StreamReplicas,
			MaxAge:      n.StreamMaxAge,
			Discard:     jetstream.DiscardOld,
		})
		if err != nil {
			if strings.Contains(err.Error(), "overlap") {
				return configError{fmt.Errorf("create stream %q for %v: another stream already captures these subjects; set NATS_STREAM to its name: %w", n.Stream, n.StreamSubjects, err)}
			}
			if strings.Contains(err.Error(), "replicas") {
				return configError{fmt.Errorf("create stream %q with %d replicas: %w (set NATS_STREAM_REPLICAS to at most the number of NATS servers)", n.Stream, n.StreamReplicas, err)}
			}
			return fmt.Errorf("create stream %q: %w", n.Stream, err)
		}
		f.log.Info("created JetStream stream", "stream", n.Stream, "subjects", n.StreamSubjects, "replicas", n.StreamReplicas)
	case err != nil:
		return fmt.Errorf("look up stream %q: %w", n.Stream, err)
	default:
		covered := false
		for _, s := range stream.CachedInfo().Config.Subjects {
			covered = covered || falco.SubjectCovers(s, n.Subject)
		}
		if !covered {
			return configError{fmt.Errorf("stream %q captures %v, which does not include subject %q: set NATS_SUBJECT inside it or NATS_STREAM to another stream",
				n.Stream, stream.CachedInfo().Config.Subjects, n.Subject)}
		}
	}
	if err := ensureDeadLetterStream(ctx, js, n); err != nil {
		return err
	}
	_, err = js.CreateOrUpdateConsumer(ctx, n.Stream, jetstream.ConsumerConfig{
		Durable:       n.Consumer,
		Description:   "falco-phantom forwarder: events are acknowledged once SOAR holds them",
		FilterSubject: n.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       n.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: n.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("create durable consumer %q on stream %q: %w", n.Consumer, n.Stream, err)
	}
	return nil
}

func (f *Forwarder) jetStreamSource(js jetstream.JetStream, p *pipeline) *source {
	var mu sync.Mutex
	var it jetstream.MessagesContext
	stopped := false
	stop := func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if it != nil {
			// Drain, not Stop: what the client prefetched stays readable,
			// so that run can give it back.
			it.Drain()
		}
	}
	run := func(ctx context.Context, out chan<- *Message, ready *atomic.Bool) error {
		for ctx.Err() == nil {
			cons, err := js.Consumer(ctx, f.cfg.NATS.Stream, f.cfg.NATS.Consumer)
			if err != nil {
				ready.Store(false)
				f.log.Warn("durable consumer unavailable; setting it up again", "error", err)
				if err := f.setupJetStream(ctx, js); err != nil && !sleepCtx(ctx, 2*time.Second) {
					return nil
				}
				continue
			}
			mu.Lock()
			if stopped {
				mu.Unlock()
				return nil
			}
			it, err = cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(f.cfg.BatchSize*2, pullBytes(js.Conn().MaxPayload())),
				jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
			mu.Unlock()
			if err != nil {
				f.log.Warn("cannot consume", "error", err)
				sleepCtx(ctx, 2*time.Second)
				continue
			}
			ready.Store(true)
			err = f.pump(ctx, it, cons, out)
			ready.Store(false)
			if n := giveBack(it); n > 0 {
				f.log.Info("gave back prefetched events for redelivery", "events", n)
			}
			if err == nil {
				return nil
			}
			f.log.Warn("consumer stopped; setting it up again", "error", err)
		}
		return nil
	}
	return &source{pipe: p, run: run, stop: stop}
}

// pump moves messages from the iterator to out. It returns nil when it was
// stopped or ctx ended, and an error when the consumer must be set up again.
func (f *Forwarder) pump(ctx context.Context, it jetstream.MessagesContext, cons jetstream.Consumer, out chan<- *Message) error {
	lastCheck := time.Now()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(pumpWait))
		switch {
		case ctx.Err() != nil:
			if err == nil {
				_ = msg.Nak()
			}
			return nil
		case errors.Is(err, jetstream.ErrMsgIteratorClosed) && !errors.Is(err, jetstream.ErrConnectionClosed):
			return nil
		case errors.Is(err, nats.ErrTimeout):
		case err != nil:
			return err
		default:
			m := jetStreamMessage(msg)
			if !f.budget.admit(ctx, m) {
				_ = msg.Nak()
				return nil
			}
			select {
			case out <- m:
			case <-ctx.Done():
				m.nak()
				return nil
			}
		}
		// An idle iterator cannot tell that its consumer vanished (for
		// example a NATS server that came back without its state): check.
		if time.Since(lastCheck) > 30*time.Second {
			lastCheck = time.Now()
			if _, err := cons.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				return err
			}
		}
	}
}

// giveBack ends the iterator and gives back the events its client had
// prefetched but the pump had not handed on, so that JetStream redelivers
// them at once (to another replica, or to this one once it is set up
// again) instead of after AckWait. It returns how many it gave back.
func giveBack(it jetstream.MessagesContext) int {
	it.Drain()
	n := 0
	for {
		msg, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			return n
		}
		_ = msg.Nak()
		n++
	}
}

// A pull request lives pullExpiry, and while it waits the server sends a
// heartbeat every pullHeartbeat. The iterator notices two missed heartbeats
// (a request lost with the server or the consumer leader that held it, as
// when a cluster node stops) and asks again, but only within one Next call:
// pumpWait must be longer than two heartbeats. With nats.go's defaults (30 s
// and 15 s) the check never fired and such a consumer stalled for good.
const (
	pullExpiry    = 10 * time.Second
	pullHeartbeat = 2 * time.Second
	pumpWait      = 5 * time.Second
)

// minPullBytes bounds what one pull request may bring when NATS's
// max_payload is small; see pullBytes.
const minPullBytes = 16 << 20

// pullBytes bounds the bytes one pull request asks for. Without a bound, a
// burst of large events (up to max_payload each, times the messages asked
// for) piles up in the server's buffer for this connection until the
// server drops it as a slow consumer, and every event in flight waits
// AckWait. The bound must hold the largest message with its subjects, or
// the consumer stalls; it stays well below the 64 MiB a subscription may
// buffer, since a new request can start before the last one is consumed.
func pullBytes(maxPayload int64) int {
	return int(max(minPullBytes, maxPayload+1<<20))
}

func jetStreamMessage(msg jetstream.Msg) *Message {
	return &Message{
		Subject:    msg.Subject(),
		Data:       msg.Data(),
		Received:   time.Now(),
		Done:       func(error) { _ = msg.Ack() },
		Nak:        func() { _ = msg.Nak() },
		InProgress: func() { _ = msg.InProgress() },
	}
}

func (f *Forwarder) coreSource(nc *nats.Conn) *source {
	p := f.newPipeline(newMemoryAnchors(), &natsDeadLetters{nc: nc, prefix: f.cfg.NATS.DeadLetterSubject})
	var mu sync.Mutex
	var sub *nats.Subscription
	stop := func() {
		mu.Lock()
		defer mu.Unlock()
		if sub != nil {
			_ = sub.Unsubscribe()
		}
	}
	run := func(ctx context.Context, out chan<- *Message, ready *atomic.Bool) error {
		mu.Lock()
		var err error
		sub, err = nc.QueueSubscribe(f.cfg.NATS.Subject, f.cfg.NATS.Queue, func(m *nats.Msg) {
			msg := &Message{Subject: m.Subject, Data: m.Data, Received: time.Now()}
			if !f.budget.admit(ctx, msg) {
				return
			}
			select {
			case out <- msg:
			case <-ctx.Done():
			}
		})
		mu.Unlock()
		if err != nil {
			return fmt.Errorf("subscribe to %s: %w", f.cfg.NATS.Subject, err)
		}
		f.log.Warn("core mode: events published while no forwarder runs, or held in memory when it is killed, are lost; use JetStream mode for durable delivery")
		ready.Store(true)
		<-ctx.Done()
		return nil
	}
	return &source{pipe: p, run: run, stop: stop}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// maxInFlightBytes bounds the bytes of the events taken from NATS and not
// settled yet (waiting for a worker, or being delivered). Real alerts are a
// few kilobytes, so only a burst of hostile, oversized events reaches it.
const maxInFlightBytes = 32 << 20

// budget bounds the events in flight, in bytes and in number; see admit.
type budget struct {
	mu        sync.Mutex
	used      int // bytes
	count     int // events
	limit     int // bytes
	maxEvents int
	waiting   bool
	freed     chan struct{} // closed when some budget is given back to a waiter
}

func newBudget(limit, maxEvents int) *budget {
	return &budget{limit: limit, maxEvents: maxEvents, freed: make(chan struct{})}
}

// admit waits until m fits in the budget (a message larger than the whole
// byte budget waits for all of it) and makes settling m give its share
// back. It returns false when ctx ends first.
func (b *budget) admit(ctx context.Context, m *Message) bool {
	n := min(len(m.Data), b.limit)
	for {
		b.mu.Lock()
		if b.used+n <= b.limit && b.count < b.maxEvents {
			b.used += n
			b.count++
			b.mu.Unlock()
			break
		}
		b.waiting = true
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return false
		}
	}
	var once sync.Once
	release := func() { once.Do(func() { b.release(n) }) }
	done, nak := m.Done, m.Nak
	m.Done = func(err error) {
		if done != nil {
			done(err)
		}
		release()
	}
	m.Nak = func() {
		if nak != nil {
			nak()
		}
		release()
	}
	return true
}

func (b *budget) release(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.count--
	if b.waiting {
		b.waiting = false
		close(b.freed)
		b.freed = make(chan struct{})
	}
}
