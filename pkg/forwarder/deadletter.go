package forwarder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reasons an event is dead-lettered. They are the last token of the
// dead-letter subject and a label of the dead-letter metric.
const (
	ReasonTooLarge        = "too_large"
	ReasonInvalidEvent    = "invalid_event"
	ReasonPhantomRejected = "phantom_rejected"
)

// DeadLetterReasons lists every reason an event is dead-lettered for.
func DeadLetterReasons() []string {
	return []string{ReasonTooLarge, ReasonInvalidEvent, ReasonPhantomRejected}
}

// Headers of a dead letter.
const (
	HeaderReason    = "Falco-Phantom-Reason"
	HeaderError     = "Falco-Phantom-Error"
	HeaderSubject   = "Falco-Phantom-Subject"
	HeaderSize      = "Falco-Phantom-Size"
	HeaderTruncated = "Falco-Phantom-Truncated"
	HeaderReceived  = "Falco-Phantom-Received"
)

// maxDeadLetterBody keeps a dead letter below NATS's default 1 MiB payload
// limit; larger bodies are cut (and marked) since they cannot be replayed.
const maxDeadLetterBody = 512 << 10

// DeadLetterError says an event was kept as a dead letter instead of being
// delivered, and why.
type DeadLetterError struct {
	Reason string
	Detail string
}

func (e *DeadLetterError) Error() string {
	return fmt.Sprintf("dead-lettered (%s): %s", e.Reason, e.Detail)
}

// deadLetterSink keeps undeliverable events.
type deadLetterSink interface {
	// put keeps ms[i] as a dead letter for dls[i] and returns one error
	// per message, nil for those it kept.
	put(ctx context.Context, ms []*Message, dls []*DeadLetterError) []error
}

// deadLetterQueue takes dead letters from the workers, which go on at
// once, and writes them to the sink from a goroutine of its own. What the
// sink does not take (a dead-letter stream that is full, with limits that
// discard new messages, or unavailable) is held, unacknowledged, and
// retried with backoff: a dead letter that cannot be written never holds
// back the valid alerts behind it. Held events still count against the
// consumer's MaxAckPending and the bytes in flight; their leases are kept
// like those of every event the forwarder holds.
type deadLetterQueue struct {
	sink    deadLetterSink
	metrics *Metrics
	log     *slog.Logger
	kick    chan struct{} // a dead letter is waiting to be written

	mu      sync.Mutex
	pending []deadLetter
	// refusal is the sink's last error while dead letters are held.
	refusal error
}

type deadLetter struct {
	msg *Message
	why *DeadLetterError
}

// deadLetterBatch is the most dead letters written in one go.
const deadLetterBatch = 256

func newDeadLetterQueue(sink deadLetterSink, metrics *Metrics, log *slog.Logger) *deadLetterQueue {
	return &deadLetterQueue{sink: sink, metrics: metrics, log: log, kick: make(chan struct{}, 1)}
}

// add queues m to be kept as a dead letter for why.
func (q *deadLetterQueue) add(m *Message, why *DeadLetterError) {
	q.mu.Lock()
	q.pending = append(q.pending, deadLetter{m, why})
	q.metrics.deadLettersHeld.Set(float64(len(q.pending)))
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// Held returns how many dead letters wait to be written, and the sink's
// last error when it refused them (nil while it has not).
func (q *deadLetterQueue) Held() (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending), q.refusal
}

// run writes dead letters as they come until stop is closed, then tries
// once more to write what it holds and gives back what is left. ctx bounds
// each write.
func (q *deadLetterQueue) run(ctx context.Context, stop <-chan struct{}) {
	var retry <-chan time.Time // set while the sink refuses
	failures := 0
	for {
		kick := q.kick
		if retry != nil {
			kick = nil // new dead letters wait for the retry
		}
		select {
		case <-stop:
			q.write(ctx)
			q.giveBack()
			return
		case <-kick:
		case <-retry:
		}
		if q.write(ctx) {
			failures, retry = 0, nil
			continue
		}
		failures++
		wait := backoff(failures, false)
		retry = time.After(wait)
		n, err := q.Held()
		q.log.Error("cannot store dead letters; holding them, valid alerts still flow", "error", err, "held", n, "retry_in", wait.Round(time.Millisecond).String())
	}
}

// write hands everything pending to the sink, a batch at a time, and
// reports whether all of it was taken.
func (q *deadLetterQueue) write(ctx context.Context) bool {
	q.mu.Lock()
	todo := q.pending
	q.pending = nil
	q.mu.Unlock()
	var failed []deadLetter
	var firstErr error
	for len(todo) > 0 {
		batch := todo[:min(len(todo), deadLetterBatch)]
		todo = todo[len(batch):]
		ms, whys := make([]*Message, len(batch)), make([]*DeadLetterError, len(batch))
		for i, d := range batch {
			ms[i], whys[i] = d.msg, d.why
		}
		for i, err := range q.sink.put(ctx, ms, whys) {
			d := batch[i]
			if err != nil {
				failed = append(failed, d)
				firstErr = cmp.Or(firstErr, err)
				continue
			}
			q.metrics.deadLettered.WithLabelValues(d.why.Reason).Inc()
			q.log.Warn("event dead-lettered", "reason", d.why.Reason, "error", d.why.Detail, "subject", d.msg.Subject, "bytes", len(d.msg.Data))
			d.msg.done(d.why)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(failed, q.pending...)
	q.metrics.deadLettersHeld.Set(float64(len(q.pending)))
	switch {
	case len(failed) > 0:
		q.refusal = firstErr
	case len(q.pending) == 0:
		q.refusal = nil
	}
	return len(failed) == 0
}

// giveBack returns what is held for redelivery.
func (q *deadLetterQueue) giveBack() {
	q.mu.Lock()
	held := q.pending
	q.pending = nil
	q.metrics.deadLettersHeld.Set(0)
	q.mu.Unlock()
	for _, d := range held {
		d.msg.nak()
	}
}

// natsDeadLetters publishes dead letters to NATS. With a JetStream context
// each publish is confirmed by the dead-letter stream before the original
// is acknowledged; in core mode it is a plain publish.
type natsDeadLetters struct {
	nc     *nats.Conn
	js     jetstream.JetStream // nil in core mode
	prefix string
}

// deadLetterAckWait bounds the wait for the dead-letter stream to confirm
// a batch of dead letters.
const deadLetterAckWait = 10 * time.Second

// put publishes the whole batch before waiting for the confirmations, so
// that a flood of bad events costs one round trip per batch, not one per
// event.
func (d *natsDeadLetters) put(ctx context.Context, ms []*Message, dls []*DeadLetterError) []error {
	errs := make([]error, len(ms))
	if d.js == nil {
		for i, m := range ms {
			msg := deadLetterMsg(d.prefix, m, dls[i])
			if err := d.nc.PublishMsg(msg); err != nil {
				errs[i] = fmt.Errorf("publish dead letter to %s: %w", msg.Subject, err)
			}
		}
		return errs
	}
	futures := make([]jetstream.PubAckFuture, len(ms))
	for i, m := range ms {
		msg := deadLetterMsg(d.prefix, m, dls[i])
		f, err := d.js.PublishMsgAsync(msg)
		if err != nil {
			errs[i] = fmt.Errorf("publish dead letter to %s: %w", msg.Subject, err)
			continue
		}
		futures[i] = f
	}
	timeout := time.NewTimer(deadLetterAckWait)
	defer timeout.Stop()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = fmt.Errorf("publish dead letter to %s: %w", f.Msg().Subject, err)
		case <-timeout.C:
			for j := i; j < len(futures); j++ {
				if futures[j] != nil && errs[j] == nil {
					errs[j] = fmt.Errorf("publish dead letter to %s: no confirmation within %s", futures[j].Msg().Subject, deadLetterAckWait)
				}
			}
			return errs
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	return errs
}

func deadLetterMsg(prefix string, m *Message, dl *DeadLetterError) *nats.Msg {
	body := m.Data
	h := nats.Header{}
	h.Set(HeaderReason, dl.Reason)
	h.Set(HeaderError, headerValue(dl.Detail, 1024))
	// Intact: replay publishes to it. NATS bounds subjects (a publish line
	// is at most 4 KiB by default) and they hold no white space.
	h.Set(HeaderSubject, oneLine(m.Subject))
	h.Set(HeaderSize, strconv.Itoa(len(m.Data)))
	h.Set(HeaderReceived, m.Received.UTC().Format(time.RFC3339Nano))
	if len(body) > maxDeadLetterBody {
		body = body[:maxDeadLetterBody]
		h.Set(HeaderTruncated, "true")
	}
	return &nats.Msg{Subject: prefix + "." + dl.Reason, Header: h, Data: body}
}

// headerValue makes s safe as a NATS header value: one line, bounded.
func headerValue(s string, n int) string { return bound(oneLine(s), n) }

// oneLine replaces control characters by spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// ensureDeadLetterStream creates the stream that keeps dead letters in
// JetStream mode, unless it exists.
func ensureDeadLetterStream(ctx context.Context, js jetstream.JetStream, cfg NATSConfig) error {
	_, err := js.Stream(ctx, cfg.DeadLetterStream)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("look up dead-letter stream %q: %w", cfg.DeadLetterStream, err)
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.DeadLetterStream,
		Description: "Falco events falco-phantom could not deliver to SOAR; replay with: falco-phantom-forwarder replay-dead-letters",
		Subjects:    []string{cfg.DeadLetterSubject + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.StreamReplicas,
		MaxAge:      30 * 24 * time.Hour,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("create dead-letter stream %q on %s.>: %w", cfg.DeadLetterStream, cfg.DeadLetterSubject, err)
	}
	return nil
}
