// Package deadletters reads and changes the dead-letter stream the
// forwarder keeps: what is there and why, one dead letter whole, dropping
// those nobody needs, and replaying those whose cause is fixed. It needs
// nothing but NATS: no extra tool, no cluster access beyond a connection.
package deadletters

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
)

// Letter is one dead letter.
type Letter struct {
	Sequence uint64    `json:"sequence"`
	Reason   string    `json:"reason"`
	Error    string    `json:"error"`
	Subject  string    `json:"subject"`
	Size     int       `json:"size"`
	Received time.Time `json:"received"`
	// Stored is when the dead-letter stream took it.
	Stored    time.Time `json:"stored"`
	Truncated bool      `json:"truncated,omitempty"`
	// Data is the event as it arrived (Get only).
	Data []byte `json:"data,omitempty"`
}

// Filter selects dead letters; its zero value selects all.
type Filter struct {
	// Reasons: only these (all when empty).
	Reasons []string
	// Since and Until bound when the event was received.
	Since, Until time.Time
}

func (f Filter) matches(l Letter) bool {
	switch {
	case len(f.Reasons) > 0 && !slices.Contains(f.Reasons, l.Reason):
		return false
	case !f.Since.IsZero() && l.Received.Before(f.Since):
		return false
	case !f.Until.IsZero() && l.Received.After(f.Until):
		return false
	}
	return true
}

// Useless are the reasons for which a replay cannot help: the event itself
// is what SOAR or the forwarder can never take.
var Useless = []string{forwarder.ReasonInvalidEvent, forwarder.ReasonTooLarge}

// Stream is a dead-letter stream.
type Stream struct {
	js   jetstream.JetStream
	name string
}

// Open opens the dead-letter stream name (forwarder.Defaults().NATS.DeadLetterStream
// unless the forwarder was told otherwise).
func Open(ctx context.Context, js jetstream.JetStream, name string) (*Stream, error) {
	if _, err := js.Stream(ctx, name); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("no dead-letter stream %q: the forwarder creates it when it starts (nothing was ever dead-lettered on this NATS?)", name)
		}
		return nil, fmt.Errorf("open dead-letter stream %q: %w", name, err)
	}
	return &Stream{js: js, name: name}, nil
}

// each calls fn with every dead letter stored when it starts, in order,
// until fn returns false or an error.
func (s *Stream) each(ctx context.Context, fn func(Letter, jetstream.Msg) (bool, error)) error {
	st, err := s.js.Stream(ctx, s.name)
	if err != nil {
		return fmt.Errorf("read dead-letter stream %q: %w", s.name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("read dead-letter stream %q: %w", s.name, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("read dead-letter stream %q: %w", s.name, err)
	}
	// Dead letters written while this runs are left for the next run.
	last := info.State.LastSeq
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return fmt.Errorf("read dead letter: %w", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read dead letter metadata: %w", err)
		}
		if meta.Sequence.Stream > last {
			return nil
		}
		more, err := fn(letterOf(msg, meta), msg)
		if err != nil || !more {
			return err
		}
		// NumPending counts what is left after this one; the last
		// sequence may be a dead letter removed since, which never comes.
		if meta.Sequence.Stream >= last || meta.NumPending == 0 {
			return nil
		}
	}
}

func letterOf(msg jetstream.Msg, meta *jetstream.MsgMetadata) Letter {
	h := msg.Headers()
	l := Letter{
		Sequence: meta.Sequence.Stream, Reason: h.Get(forwarder.HeaderReason), Error: h.Get(forwarder.HeaderError),
		Subject: h.Get(forwarder.HeaderSubject), Stored: meta.Timestamp, Truncated: h.Get(forwarder.HeaderTruncated) == "true",
	}
	l.Size, _ = strconv.Atoi(h.Get(forwarder.HeaderSize))
	l.Received, _ = time.Parse(time.RFC3339Nano, h.Get(forwarder.HeaderReceived))
	return l
}

// List returns the dead letters f selects, without their data.
func (s *Stream) List(ctx context.Context, f Filter) ([]Letter, error) {
	out := []Letter{}
	err := s.each(ctx, func(l Letter, _ jetstream.Msg) (bool, error) {
		if f.matches(l) {
			out = append(out, l)
		}
		return true, nil
	})
	return out, err
}

// Get returns one dead letter with its data.
func (s *Stream) Get(ctx context.Context, seq uint64) (*Letter, error) {
	st, err := s.js.Stream(ctx, s.name)
	if err != nil {
		return nil, fmt.Errorf("read dead-letter stream %q: %w", s.name, err)
	}
	raw, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("no dead letter %d in %s (replayed or dropped already?)", seq, s.name)
	}
	if err != nil {
		return nil, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	h := nats.Header(raw.Header)
	l := &Letter{
		Sequence: raw.Sequence, Reason: h.Get(forwarder.HeaderReason), Error: h.Get(forwarder.HeaderError),
		Subject: h.Get(forwarder.HeaderSubject), Stored: raw.Time, Truncated: h.Get(forwarder.HeaderTruncated) == "true", Data: raw.Data,
	}
	l.Size, _ = strconv.Atoi(h.Get(forwarder.HeaderSize))
	l.Received, _ = time.Parse(time.RFC3339Nano, h.Get(forwarder.HeaderReceived))
	return l, nil
}

// Drop removes the dead letters f selects and returns how many.
func (s *Stream) Drop(ctx context.Context, f Filter) (int, error) {
	st, err := s.js.Stream(ctx, s.name)
	if err != nil {
		return 0, fmt.Errorf("read dead-letter stream %q: %w", s.name, err)
	}
	dropped := 0
	err = s.each(ctx, func(l Letter, _ jetstream.Msg) (bool, error) {
		if !f.matches(l) {
			return true, nil
		}
		if err := st.DeleteMsg(ctx, l.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, fmt.Errorf("drop dead letter %d: %w", l.Sequence, err)
		}
		dropped++
		return true, nil
	})
	return dropped, err
}

// DropOne removes one dead letter.
func (s *Stream) DropOne(ctx context.Context, seq uint64) error {
	st, err := s.js.Stream(ctx, s.name)
	if err != nil {
		return fmt.Errorf("read dead-letter stream %q: %w", s.name, err)
	}
	if err := st.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("no dead letter %d in %s", seq, s.name)
		}
		return fmt.Errorf("drop dead letter %d: %w", seq, err)
	}
	return nil
}

// ReplayResult counts what a replay did.
type ReplayResult struct {
	Replayed int `json:"replayed"`
	// Skipped were not replayed and stay in the dead-letter stream: cut
	// when dead-lettered, without an original subject, or with one that
	// NATS refuses or that no stream captures.
	Skipped []Skip `json:"skipped"`
	// Left are dead letters the filter did not select, not touched.
	Left int `json:"left"`
}

// Skip is a dead letter a replay left in place, and why.
type Skip struct {
	Sequence uint64 `json:"sequence"`
	Reason   string `json:"reason"`
	Why      string `json:"why"`
}

// Replay publishes the dead letters f selects back to their original
// subjects (so the event stream stores them again and the forwarder
// retries them) and removes each from the dead-letter stream once the
// event stream has confirmed it. One that cannot be replayed is skipped,
// and the replay goes on with the next; it stops only when NATS itself
// fails. Replaying is safe to repeat: delivery is idempotent, and with
// nothing to replay it does nothing.
func (s *Stream) Replay(ctx context.Context, f Filter) (ReplayResult, error) {
	res := ReplayResult{Skipped: []Skip{}}
	st, err := s.js.Stream(ctx, s.name)
	if err != nil {
		return res, fmt.Errorf("read dead-letter stream %q: %w", s.name, err)
	}
	err = s.each(ctx, func(l Letter, msg jetstream.Msg) (bool, error) {
		skip := func(why string) {
			res.Skipped = append(res.Skipped, Skip{Sequence: l.Sequence, Reason: l.Reason, Why: why})
		}
		switch {
		case !f.matches(l):
			res.Left++
			return true, nil
		case l.Subject == "":
			skip("no original subject")
			return true, nil
		case l.Truncated:
			skip("the event was cut when it was dead-lettered")
			return true, nil
		}
		_, err := s.js.Publish(ctx, l.Subject, msg.Data())
		switch {
		case errors.Is(err, nats.ErrBadSubject):
			skip("the original subject is not a valid NATS subject")
		case errors.Is(err, jetstream.ErrNoStreamResponse):
			skip("no stream captures the original subject")
		case err != nil:
			return false, fmt.Errorf("republish dead letter %d: %w", l.Sequence, err)
		default:
			if err := st.DeleteMsg(ctx, l.Sequence); err != nil {
				return false, fmt.Errorf("remove replayed dead letter %d: %w", l.Sequence, err)
			}
			res.Replayed++
		}
		return true, nil
	})
	return res, err
}
