package forwarder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	h.Set(HeaderSubject, headerValue(m.Subject, 256))
	h.Set(HeaderSize, strconv.Itoa(len(m.Data)))
	h.Set(HeaderReceived, m.Received.UTC().Format(time.RFC3339Nano))
	if len(body) > maxDeadLetterBody {
		body = body[:maxDeadLetterBody]
		h.Set(HeaderTruncated, "true")
	}
	return &nats.Msg{Subject: prefix + "." + dl.Reason, Header: h, Data: body}
}

// headerValue makes s safe as a NATS header value: one line, bounded.
func headerValue(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return bound(s, n)
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

// ReplayResult counts what a replay did.
type ReplayResult struct {
	Replayed int `json:"replayed"`
	// Skipped were cut when dead-lettered, or had no original subject.
	Skipped int `json:"skipped"`
	// Left are dead letters of other reasons, not touched.
	Left int `json:"left"`
}

// ReplayDeadLetters publishes dead letters back to their original subjects
// (so the event stream stores them again and the forwarder retries them)
// and removes each from the dead-letter stream once the event stream has
// confirmed it. Only dead letters whose reason is in reasons are replayed
// (all when reasons is empty). Replaying is safe to repeat: delivery is
// idempotent.
func ReplayDeadLetters(ctx context.Context, js jetstream.JetStream, stream string, reasons []string) (ReplayResult, error) {
	var res ReplayResult
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return res, fmt.Errorf("open dead-letter stream %q: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("read dead-letter stream %q: %w", stream, err)
	}
	if info.State.Msgs == 0 {
		return res, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return res, fmt.Errorf("read dead-letter stream %q: %w", stream, err)
	}
	last := info.State.LastSeq
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return res, fmt.Errorf("read dead letter: %w", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return res, fmt.Errorf("read dead letter metadata: %w", err)
		}
		h := msg.Headers()
		subject, reason := h.Get(HeaderSubject), h.Get(HeaderReason)
		switch {
		case len(reasons) > 0 && !slices.Contains(reasons, reason):
			res.Left++
		case subject == "" || h.Get(HeaderTruncated) == "true":
			res.Skipped++
		default:
			if _, err := js.Publish(ctx, subject, msg.Data()); err != nil {
				return res, fmt.Errorf("republish dead letter %d to %s: %w", meta.Sequence.Stream, subject, err)
			}
			if err := s.DeleteMsg(ctx, meta.Sequence.Stream); err != nil {
				return res, fmt.Errorf("remove replayed dead letter %d: %w", meta.Sequence.Stream, err)
			}
			res.Replayed++
		}
		if meta.Sequence.Stream >= last {
			return res, nil
		}
	}
}
