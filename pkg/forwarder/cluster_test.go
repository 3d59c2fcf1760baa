package forwarder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
)

// natsCluster is a JetStream cluster of embedded servers on loopback.
type natsCluster struct {
	servers []*server.Server
	names   []string
}

// startNATSCluster starts size servers that route to each other, each with
// JetStream in a folder of its own, and waits until JetStream has a leader.
func startNATSCluster(t *testing.T, size int) *natsCluster {
	t.Helper()
	routePorts := make([]int, size)
	for i := range routePorts {
		routePorts[i] = freePort(t)
	}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(p)})
	}
	c := &natsCluster{}
	for i := range size {
		name := fmt.Sprintf("n%d", i+1)
		opts := &server.Options{
			ServerName: name, Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "falco-test", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:  routes,
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("NATS server %s: %v", name, err)
		}
		srv.Start()
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("NATS server %s not ready after 10s", name)
		}
		c.servers, c.names = append(c.servers, srv), append(c.names, name)
	}
	nc := connect(t, c.URLs())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := js.AccountInfo(ctx); err != nil {
			return fmt.Errorf("JetStream not ready: %w", err)
		}
		return nil
	})
	return c
}

// URLs lists the client URLs of the servers still running.
func (c *natsCluster) URLs() string {
	var urls []string
	for _, s := range c.servers {
		if s.Running() {
			urls = append(urls, s.ClientURL())
		}
	}
	return strings.Join(urls, ",")
}

// stop shuts down the server named name.
func (c *natsCluster) stop(t *testing.T, name string) {
	t.Helper()
	for i, n := range c.names {
		if n == name {
			c.servers[i].Shutdown()
			c.servers[i].WaitForShutdown()
			return
		}
	}
	t.Fatalf("no NATS server named %q", name)
}

// TestNATSClusterNodeStopped runs the forwarder against a three-node
// JetStream cluster with the stream, the consumer and the grouping bucket
// replicated three times, and stops the node that leads the durable
// consumer in the middle of a stream of alerts. Every alert the cluster
// confirmed is delivered once.
func TestNATSClusterNodeStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster and waits for a leader election (about 15 s); skipped with -short")
	}
	t.Parallel()
	cluster := startNATSCluster(t, 3)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	// The forwarder connects to the first node, which keeps running: it
	// must notice by itself that the consumer's leader is gone.
	cfg := baseConfig(cluster.servers[0].ClientURL(), soar.URL)
	cfg.NATS.StreamReplicas = 3
	cfg.NATS.AckWait = 5 * time.Second
	cfg.BatchSize = 16
	fw := startForwarder(t, cfg)

	// The publisher waits for the stream's confirmation and publishes again
	// when none comes (the stream may have no leader for a while): every
	// alert it counts is stored, some maybe twice, which the forwarder must
	// not store twice in SOAR. falcosidekick does a plain publish; what
	// happens to those during an election is in docs/reliability.md.
	pub, err := nats.Connect(cluster.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	js, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(context.Background(), cfg.NATS.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Config.Replicas; got != 3 {
		t.Fatalf("stream has %d replicas, want 3", got)
	}
	kv, err := js.KeyValue(context.Background(), cfg.NATS.GroupBucket)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := kv.Status(context.Background()); err != nil || st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas != 3 {
		t.Fatalf("grouping bucket: %v, want 3 replicas", err)
	}

	c := soarClient(t, soar.URL)
	s := newStream("cluster", 20, 20, time.Now().UTC(), 50*time.Millisecond)
	publishConfirmed(t, js, s, 0, 200)
	waitCount(t, c, 50, 20*time.Second)
	// Stop the node that leads the durable consumer, another than the
	// forwarder's: the forwarder's waiting pull request dies with it,
	// unanswered, and no reconnection tells the forwarder so.
	cons, err := js.Consumer(context.Background(), cfg.NATS.Stream, cfg.NATS.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	var ci *jetstream.ConsumerInfo
	testkit.WaitFor(t, 20*time.Second, func() error {
		if ci, err = cons.Info(context.Background()); err != nil {
			return err
		}
		if ci.Cluster.Leader != cluster.names[0] {
			return nil
		}
		_, err := pub.Request("$JS.API.CONSUMER.LEADER.STEPDOWN."+cfg.NATS.Stream+"."+cfg.NATS.Consumer, nil, 2*time.Second)
		return fmt.Errorf("the consumer is led by %s, the forwarder's node (stepdown: %v)", ci.Cluster.Leader, err)
	})
	if info, err = stream.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	leader := ci.Cluster.Leader
	cluster.stop(t, leader)
	t.Logf("stopped %s, leader of the consumer (the stream's leader was %s)", leader, info.Cluster.Leader)
	publishConfirmed(t, js, s, 200, len(s.events))

	checkDelivered(t, c, s, 45*time.Second)
	waitIdle(t, pub, 30*time.Second)
	checkDelivered(t, c, s, time.Second)
	if ci, err = cons.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ci.Cluster.Leader == "" || ci.Cluster.Leader == leader {
		t.Errorf("consumer leader is %q after %s stopped; want another node", ci.Cluster.Leader, leader)
	}
	if err := fw.fw.Ready(); err != nil {
		t.Errorf("forwarder not ready after the node stopped: %v", err)
	}
}

// publishConfirmed publishes events[from:to] and waits for the stream to
// confirm each, publishing again while it does not.
func publishConfirmed(t *testing.T, js jetstream.JetStream, s *stream, from, to int) {
	t.Helper()
	for _, ev := range s.events[from:to] {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, 30*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := js.Publish(ctx, ev.Subject(), b)
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("no confirmation from the stream within 2s")
			}
			return err
		})
	}
}
