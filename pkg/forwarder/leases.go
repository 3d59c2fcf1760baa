package forwarder

import (
	"sync"
	"time"
)

// leases keeps the events the forwarder holds, from the moment a worker
// gets them until they are settled, and tells their source every so often
// that they are still being worked on (JetStream would redeliver them
// after AckWait otherwise): while SOAR is retried, while they wait for a
// request slot, while their dead letter is held.
type leases struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	held map[*Message]struct{}
}

// leaseEvery is how often held events are reported in progress; it is
// well below JetStream's default AckWait of 30 s.
const leaseEvery = 5 * time.Second

func newLeases(every time.Duration) *leases {
	return &leases{every: every, now: time.Now, held: map[*Message]struct{}{}}
}

// hold keeps m until it is settled (Done or Nak).
func (l *leases) hold(m *Message) {
	l.mu.Lock()
	l.held[m] = struct{}{}
	l.mu.Unlock()
	var once sync.Once
	release := func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.held, m)
			l.mu.Unlock()
		})
	}
	done, nak := m.Done, m.Nak
	m.Done = func(err error) {
		release()
		if done != nil {
			done(err)
		}
	}
	m.Nak = func() {
		release()
		if nak != nil {
			nak()
		}
	}
}

// renew reports in progress every event held for longer than the period.
func (l *leases) renew() {
	cutoff := l.now().Add(-l.every)
	l.mu.Lock()
	var old []*Message
	for m := range l.held {
		if m.Received.Before(cutoff) {
			old = append(old, m)
		}
	}
	l.mu.Unlock()
	for _, m := range old {
		m.inProgress()
	}
}

// keep renews the leases every period until stop is closed.
func (l *leases) keep(stop <-chan struct{}) {
	tick := time.NewTicker(l.every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			l.renew()
		}
	}
}
