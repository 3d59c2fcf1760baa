package forwarder_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// stream is a known set of alerts: every one carries a unique marker at the
// end of its command line, and belongs to the incident of its container.
type stream struct {
	events   []*falco.Event
	markers  []string
	incident map[string]string // marker -> container id
}

// newStream builds alerts of `containers` containers, `perContainer` each,
// the i-th alert of every container `step` after its (i-1)-th, starting at
// start. They are in time order, as one Falco would publish them. Every
// container's alerts fall within the forwarder's group window when
// perContainer*step is shorter than it.
func newStream(prefix string, containers, perContainer int, start time.Time, step time.Duration) *stream {
	s := &stream{incident: map[string]string{}}
	h := sha256.Sum256([]byte(prefix))
	for i := range perContainer {
		for c := range containers {
			id := hex.EncodeToString(h[:4]) + fmt.Sprintf("%04x", c)
			marker := fmt.Sprintf("%s-%d-%d", prefix, c, i)
			s.events = append(s.events, shell(id, marker, start.Add(time.Duration(i)*step+time.Duration(c)*time.Microsecond)))
			s.markers = append(s.markers, marker)
			s.incident[marker] = id
		}
	}
	return s
}

// publishAll publishes events[from:to] as falcosidekick does.
func (s *stream) publishAll(t *testing.T, nc *nats.Conn, from, to int) {
	t.Helper()
	for _, ev := range s.events[from:to] {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish(ev.Subject(), b); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// countStored returns how many artifacts SOAR holds, from its listing.
func countStored(c *phantom.Client) (int, error) {
	page, err := c.Artifacts(context.Background(), phantom.Query{PageSize: 1})
	if err != nil {
		return 0, err
	}
	return page.Count, nil
}

// waitCount waits until SOAR holds at least n artifacts.
func waitCount(t *testing.T, c *phantom.Client, n int, timeout time.Duration) {
	t.Helper()
	testkit.WaitFor(t, timeout, func() error {
		got, err := countStored(c)
		if err != nil {
			return err
		}
		if got < n {
			return fmt.Errorf("SOAR holds %d artifacts, want at least %d", got, n)
		}
		return nil
	})
}

// checkDelivered waits until SOAR holds every alert of s, then checks
// through SOAR's REST API that each is there exactly once, that nothing
// else is there, and that each incident (container) has exactly one case
// of its own, whatever order its alerts were grouped in. It returns the
// artifacts by marker.
func checkDelivered(t *testing.T, c *phantom.Client, s *stream, timeout time.Duration) map[string]phantom.Artifact {
	t.Helper()
	waitCount(t, c, len(s.markers), timeout)
	arts, err := stored(t, c) // fails on a marker stored twice
	if err != nil {
		t.Fatal(err)
	}
	var missing, extra []string
	for _, m := range s.markers {
		if _, ok := arts[m]; !ok {
			missing = append(missing, m)
		}
	}
	for m := range arts {
		if _, ok := s.incident[m]; !ok {
			extra = append(extra, m)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("SOAR holds %d artifacts, want %d: missing %v, unexpected %v", len(arts), len(s.markers), head(missing), head(extra))
	}
	casesOf := map[string][]int64{}  // container -> its cases
	incidentOf := map[int64]string{} // case -> its container
	for m, a := range arts {
		inc := s.incident[m]
		if other, ok := incidentOf[a.Container]; ok && other != inc {
			t.Errorf("case %d holds alerts of containers %s and %s; want one incident per case", a.Container, other, inc)
		}
		incidentOf[a.Container] = inc
		if !slices.Contains(casesOf[inc], a.Container) {
			casesOf[inc] = append(casesOf[inc], a.Container)
		}
	}
	for inc, cases := range casesOf {
		if len(cases) > 1 {
			t.Errorf("alerts of container %s are in cases %v; want one case", inc, cases)
		}
	}
	page, err := c.Containers(context.Background(), phantom.Query{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if page.Count != len(incidentOf) {
		t.Errorf("SOAR holds %d cases, %d of which hold the alerts; want no empty or extra case", page.Count, len(incidentOf))
	}
	return arts
}

// waitConsumer waits until the forwarder has set up its durable consumer.
func waitConsumer(t *testing.T, nc *nats.Conn, timeout time.Duration) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	d := forwarder.Defaults().NATS
	testkit.WaitFor(t, timeout, func() error {
		_, err := js.Consumer(context.Background(), d.Stream, d.Consumer)
		return err
	})
}

// waitIdle waits until the durable consumer has nothing pending or
// unacknowledged: every event the stream holds is settled.
func waitIdle(t *testing.T, nc *nats.Conn, timeout time.Duration) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	d := forwarder.Defaults().NATS
	testkit.WaitFor(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := js.Consumer(ctx, d.Stream, d.Consumer)
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("consumer has %d events pending and %d unacknowledged", info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

func head(s []string) []string {
	slices.Sort(s)
	if len(s) > 10 {
		return append(s[:10:10], fmt.Sprintf("... %d more", len(s)-10))
	}
	return s
}
