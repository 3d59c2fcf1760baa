package forwarder_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
)

// TestForwarderKilledMidStream runs two forwarder replicas as processes
// sharing the durable consumer, and kills them with SIGKILL, in turn, four
// times in the middle of a stream, starting each again at once. Events
// that a killed replica held come back after AckWait, and are delivered by
// whichever replica takes them; those SOAR already holds must not be stored
// twice.
func TestForwarderKilledMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts forwarder processes and kills them four times (about 15 s); skipped with -short")
	}
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	// A slow SOAR keeps requests in flight, so that kills interrupt them.
	soar.SetFaults(mockphantom.Faults{Latency: 40 * time.Millisecond})
	env := []string{
		"PHANTOM_BASE_URL=" + soar.URL, "PHANTOM_USER=" + testkit.User, "PHANTOM_PASSWORD=" + testkit.Password,
		"NATS_URL=" + n.URL(), "GROUP_WINDOW=1m", "BATCH_SIZE=8", "WORKERS=2", childAckWaitEnv + "=3s",
	}
	start := func() *child { return startChild(t, childConfig, env, "--listen=") }
	replicas := []*child{start(), start()}
	nc := connect(t, n.URL())
	waitConsumer(t, nc, 20*time.Second)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	d := forwarder.Defaults().NATS

	c := soarClient(t, soar.URL)
	s := newStream("kill", 60, 10, time.Now().UTC(), 50*time.Millisecond)
	const chunk = 120
	s.publishAll(t, nc, 0, chunk)
	midStream := 0
	for round, victim := range []int{0, 1, 0, 1} {
		before, err := countStored(c)
		if err != nil {
			t.Fatal(err)
		}
		waitCount(t, c, before+10, 30*time.Second)
		cons, err := js.Consumer(context.Background(), d.Stream, d.Consumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		replicas[victim].kill(t)
		if info.NumPending+uint64(info.NumAckPending) > 0 {
			midStream++
		}
		t.Logf("round %d: SIGKILL replica %d with %d events pending and %d unacknowledged", round, victim, info.NumPending, info.NumAckPending)
		replicas[victim] = start()
		s.publishAll(t, nc, (round+1)*chunk, min((round+2)*chunk, len(s.events)))
	}
	if midStream == 0 {
		t.Fatal("no kill happened while events were in flight; the test tested nothing")
	}

	checkDelivered(t, c, s, 60*time.Second)
	waitIdle(t, nc, 20*time.Second)
	checkDelivered(t, c, s, time.Second)
	stats := soar.Stats()
	t.Logf("SOAR stored %d artifacts in %d cases and refused %d duplicates", stats.ArtifactsCreated, stats.ContainersCreated, stats.Duplicates)
	for i, r := range replicas {
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := r.exited(t, 30*time.Second); err != nil {
			t.Errorf("replica %d after SIGTERM: %v; want a clean stop", i, err)
		}
	}
	if stats.ArtifactsCreated != int64(len(s.events)) {
		t.Errorf("SOAR created %d artifacts, want %d", stats.ArtifactsCreated, len(s.events))
	}
}
