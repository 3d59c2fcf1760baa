package forwarder_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
)

// With many incidents at once and a SOAR 30 ms away, requests go in
// parallel, but SOAR never sees more of them at once than --max-in-flight;
// every alert arrives once, one case per incident.
func TestRequestsInFlightStayWithinTheLimit(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	soar.SetFaults(mockphantom.Faults{Latency: 30 * time.Millisecond})
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.MaxInFlight = 6
	fw := startForwarder(t, cfg)
	nc := connect(t, n.URL())
	s := newStream("limit", 200, 3, time.Now().UTC(), 100*time.Millisecond)
	s.publishAll(t, nc, 0, len(s.events))
	// Wait through the forwarder's metrics: reading SOAR would add this
	// test's own requests to those SOAR sees at once.
	testkit.WaitFor(t, 60*time.Second, func() error {
		if got := metric(t, fw.fw, forwarder.MetricDelivered, ""); got < float64(len(s.events)) {
			return fmt.Errorf("%v of %d alerts delivered", got, len(s.events))
		}
		return nil
	})
	st := soar.Stats()
	checkDelivered(t, soarClient(t, soar.URL), s, 10*time.Second)
	if st.PeakInFlight > int64(cfg.MaxInFlight) {
		t.Errorf("SOAR saw %d requests at once; the limit is %d", st.PeakInFlight, cfg.MaxInFlight)
	}
	if st.PeakInFlight < 4 {
		t.Errorf("SOAR saw at most %d requests at once with 200 incidents waiting; want them in parallel, up to %d", st.PeakInFlight, cfg.MaxInFlight)
	}
	if got := metric(t, fw.fw, forwarder.MetricLimit, ""); got != float64(cfg.MaxInFlight) {
		t.Errorf("%s = %v after SOAR answered everything, want the maximum %d", forwarder.MetricLimit, got, cfg.MaxInFlight)
	}
	t.Logf("%d alerts in %d requests, at most %d at once", len(s.events), st.ByRoute["POST /rest/container"]+st.ByRoute["POST /rest/artifact"], st.PeakInFlight)
}

// A storm of 429s lowers the requests in flight (the limit halves while
// SOAR pushes back) and loses nothing; once SOAR stops pushing back, the
// limit grows again.
func TestThrottlingLowersTheRateAndLosesNothing(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{FaultSeed: 3})
	soar.SetFaults(mockphantom.Faults{Latency: 10 * time.Millisecond, ThrottleRate: 0.7})
	cfg := baseConfig(n.URL(), soar.URL)
	fw := startForwarder(t, cfg)
	nc := connect(t, n.URL())
	s := newStream("throttle", 150, 2, time.Now().UTC(), 100*time.Millisecond)
	s.publishAll(t, nc, 0, len(s.events))
	testkit.WaitFor(t, 30*time.Second, func() error {
		if got := metric(t, fw.fw, forwarder.MetricLimit, ""); got > 2 {
			return fmt.Errorf("%s = %v while SOAR answers most requests 429", forwarder.MetricLimit, got)
		}
		return nil
	})
	throttled := soar.Stats().ByStatus[429]
	soar.SetFaults(mockphantom.Faults{Latency: 10 * time.Millisecond})
	checkDelivered(t, soarClient(t, soar.URL), s, 60*time.Second)
	if throttled == 0 {
		t.Fatal("no request was answered 429: the test tested nothing")
	}
	more := newStream("after", 100, 2, time.Now().UTC(), 100*time.Millisecond)
	more.publishAll(t, nc, 0, len(more.events))
	testkit.WaitFor(t, 30*time.Second, func() error {
		if got := metric(t, fw.fw, forwarder.MetricLimit, ""); got < 8 {
			return fmt.Errorf("%s = %v after SOAR stopped pushing back; want it to grow again", forwarder.MetricLimit, got)
		}
		return nil
	})
	t.Logf("%d requests answered 429; the limit fell to 2 or less, then grew back", throttled)
}

// While SOAR is down, the forwarder holds at most MaxHeldEvents (plus what
// one pull brings): the backlog waits in JetStream, not in its memory. Once
// SOAR is back, everything arrives.
func TestHeldEventsStayWithinTheLimit(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	soar.SetFaults(mockphantom.Faults{DownUntil: time.Now().Add(time.Hour)})
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.BatchSize, cfg.MaxHeldEvents = 16, 64
	startForwarder(t, cfg)
	nc := connect(t, n.URL())
	s := newStream("held", 100, 10, time.Now().UTC(), 10*time.Millisecond)
	s.publishAll(t, nc, 0, len(s.events))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	d := forwarder.Defaults().NATS
	bound := cfg.MaxHeldEvents + 2*cfg.BatchSize // held, and one pull's worth buffered
	peak := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		cons, err := js.Consumer(context.Background(), d.Stream, d.Consumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		peak = max(peak, info.NumAckPending)
	}
	if peak > bound || peak < cfg.MaxHeldEvents/2 {
		t.Errorf("%d events unacknowledged at most while SOAR was down; want some, and at most %d (MaxHeldEvents %d + 2 pulls of %d)", peak, bound, cfg.MaxHeldEvents, cfg.BatchSize)
	}
	soar.SetFaults(mockphantom.Faults{})
	checkDelivered(t, soarClient(t, soar.URL), s, 60*time.Second)
}
