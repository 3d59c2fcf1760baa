package forwarder

import "time"

// Message is one event as it arrived, with what its source needs to hear
// back. The source decides what settling means: a JetStream ack, an HTTP
// answer, or nothing at all for a core subscription.
type Message struct {
	Subject  string
	Data     []byte
	Received time.Time

	// Done says the event is settled for good: err is nil once SOAR holds
	// it, or a *DeadLetterError when it was kept as a dead letter instead.
	// May be nil.
	Done func(err error)
	// Nak gives the event back for redelivery (on shutdown). May be nil.
	Nak func()
	// InProgress asks the source to keep waiting while SOAR is retried.
	// May be nil.
	InProgress func()
}

func (m *Message) done(err error) {
	if m.Done != nil {
		m.Done(err)
	}
}

func (m *Message) nak() {
	if m.Nak != nil {
		m.Nak()
	}
}

func (m *Message) inProgress() {
	if m.InProgress != nil {
		m.InProgress()
	}
}
