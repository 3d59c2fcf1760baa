package forwarder_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// Fault tests: each publishes a known stream of alerts, breaks something
// in the middle of it, and then checks through SOAR's REST API that every
// alert is there exactly once, in its incident's case, and nothing else.

// TestSOARDownDuringStream takes SOAR away twice in the middle of a stream
// (first answering 503 to everything, then with the process stopped) while
// alerts keep arriving.
func TestSOARDownDuringStream(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.BatchSize = 16
	fw := startForwarder(t, cfg)
	nc := connect(t, n.URL())
	c := soarClient(t, soar.URL)
	s := newStream("down", 40, 10, time.Now().UTC(), 100*time.Millisecond)

	s.publishAll(t, nc, 0, 100)
	waitCount(t, c, 1, 10*time.Second)

	soar.SetFaults(mockphantom.Faults{DownUntil: time.Now().Add(time.Hour)})
	errsBefore := metric(t, fw.fw, forwarder.MetricPhantomErrs, `kind="transient"`)
	s.publishAll(t, nc, 100, 200)
	testkit.WaitFor(t, 10*time.Second, func() error {
		if got := metric(t, fw.fw, forwarder.MetricPhantomErrs, `kind="transient"`); got <= errsBefore {
			return fmt.Errorf("%s{transient} = %v; SOAR's 503s not seen yet", forwarder.MetricPhantomErrs, got)
		}
		return nil
	})
	soar.Stop() // now the process is gone: connections are refused
	s.publishAll(t, nc, 200, 300)
	testkit.WaitFor(t, 10*time.Second, func() error {
		if err := fw.fw.Ready(); err != nil {
			return err
		}
		if got := metric(t, fw.fw, forwarder.MetricPhantomUp, ""); got != 0 {
			return fmt.Errorf("%s = %v while SOAR is down, want 0", forwarder.MetricPhantomUp, got)
		}
		return nil
	})
	soar.Restart() // a new process on the same database, without faults
	s.publishAll(t, nc, 300, 400)

	checkDelivered(t, c, s, 45*time.Second)
	waitIdle(t, nc, 10*time.Second)
	checkDelivered(t, c, s, time.Second)
	if got := metric(t, fw.fw, forwarder.MetricDeadLettered, ""); got != 0 {
		t.Errorf("%v alerts dead-lettered; an outage must hold them, not drop them", got)
	}
}

// TestSOARSlowAndFlaky delivers a stream through a SOAR that is slow,
// answers a share of requests 503, lets a share hang until the client
// times out, and (through a proxy) loses a share of its answers after it
// stored the data, so that the forwarder sends again what SOAR already
// holds.
func TestSOARSlowAndFlaky(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{FaultSeed: 7})
	proxy := newLossyProxy(t, soar.URL, 0.1)
	cfg := baseConfig(n.URL(), proxy.url)
	cfg.Phantom.Timeout = 400 * time.Millisecond
	// Small requests, so that many go through the faults.
	cfg.BatchSize = 2
	cfg.Workers = 3
	fw := startForwarder(t, cfg)
	soar.SetFaults(mockphantom.Faults{Latency: 20 * time.Millisecond, ErrorRate: 0.1, TimeoutRate: 0.05})
	nc := connect(t, n.URL())
	s := newStream("flaky", 6, 50, time.Now().UTC(), 100*time.Millisecond)
	s.publishAll(t, nc, 0, len(s.events))

	// Read SOAR directly, not through the proxy; while the faults are on,
	// give up soon on a read that they hang.
	quick, err := phantom.New(phantom.Config{BaseURL: soar.URL, Timeout: time.Second,
		Credentials: phantom.StaticCredentials{User: testkit.User, Password: testkit.Password}})
	if err != nil {
		t.Fatal(err)
	}
	waitCount(t, quick, len(s.events), 45*time.Second)
	soar.SetFaults(mockphantom.Faults{}) // so that the checks can read
	c := soarClient(t, soar.URL)
	checkDelivered(t, c, s, 10*time.Second)
	waitIdle(t, nc, 30*time.Second) // a batch may be in a long backoff
	checkDelivered(t, c, s, time.Second)

	stats := soar.Stats()
	if stats.FaultsInjected == 0 || proxy.dropped.Load() == 0 {
		t.Fatalf("faults injected %d, answers lost %d; the test did not test anything", stats.FaultsInjected, proxy.dropped.Load())
	}
	if got := metric(t, fw.fw, forwarder.MetricDelivered, `outcome="existing"`); got == 0 {
		t.Errorf("%s{existing} = 0 after %d lost answers; want the resent alerts recognised as already stored",
			forwarder.MetricDelivered, proxy.dropped.Load())
	}
	t.Logf("SOAR answered %d requests with a fault, the proxy lost %d answers, %d duplicates refused by SOAR",
		stats.FaultsInjected, proxy.dropped.Load(), stats.Duplicates)
}

// lossyProxy forwards requests to SOAR and, for a share of the writes that
// SOAR accepted, closes the connection instead of answering: the data is
// stored, but the client never hears so, as when a network path or a load
// balancer fails after the request went through.
type lossyProxy struct {
	url     string
	target  string
	rate    float64
	client  *http.Client
	mu      sync.Mutex
	rng     *rand.Rand
	dropped atomic.Int64
}

func newLossyProxy(t *testing.T, target string, rate float64) *lossyProxy {
	t.Helper()
	p := &lossyProxy{target: target, rate: rate, client: &http.Client{}, rng: rand.New(rand.NewPCG(1, 2))}
	p.url = httptestServer(t, p)
	return p
}

func (p *lossyProxy) drop() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Float64() < p.rate
}

func (p *lossyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if r.Method == http.MethodPost && resp.StatusCode == http.StatusOK && p.drop() {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			p.dropped.Add(1)
			conn.Close()
			return
		}
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// TestNATSServerRestart restarts the NATS server (same port and storage,
// like a restarted pod) under a running forwarder: it reconnects by itself
// and delivers what is published afterwards.
func TestNATSServerRestart(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.NATS.AckWait = 5 * time.Second
	fw := startForwarder(t, cfg)
	c := soarClient(t, soar.URL)
	s := newStream("natsrestart", 10, 10, time.Now().UTC(), 100*time.Millisecond)

	nc := connect(t, n.URL())
	s.publishAll(t, nc, 0, 50)
	waitCount(t, c, 50, 15*time.Second)

	n.Stop()
	testkit.WaitFor(t, 10*time.Second, func() error {
		if err := fw.fw.Ready(); err == nil {
			return fmt.Errorf("forwarder ready while NATS is down")
		}
		return nil
	})
	n.Start()
	testkit.WaitFor(t, 20*time.Second, fw.fw.Ready)
	nc2 := connect(t, n.URL()) // a new falcosidekick connection
	s.publishAll(t, nc2, 50, 100)

	checkDelivered(t, c, s, 30*time.Second)
	waitIdle(t, nc2, 15*time.Second)
	checkDelivered(t, c, s, time.Second)
	if !strings.Contains(fw.logs.String(), "NATS reconnected") {
		t.Errorf("the log does not show the reconnection:\n%s", tail(fw.logs.String(), 3000))
	}
}

// TestTokenRefusedHoldsTheStreamUntilFixed sends a whole stream while SOAR
// refuses the forwarder's token: nothing may be acknowledged or dead-
// lettered, readiness must name the setting to fix, and once the mounted
// token is fixed every alert arrives once.
func TestTokenRefusedHoldsTheStreamUntilFixed(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("revoked-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.Phantom.Auth = phantom.Auth{}
	cfg.Phantom.TokenFile = tokenFile
	fw := launchForwarder(t, cfg)
	nc := connect(t, n.URL())
	waitConsumer(t, nc, 10*time.Second)
	s := newStream("token", 6, 10, time.Now().UTC(), 100*time.Millisecond)
	s.publishAll(t, nc, 0, len(s.events))

	testkit.WaitFor(t, 10*time.Second, func() error {
		err := fw.fw.Ready()
		if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "PHANTOM_TOKEN") {
			return fmt.Errorf("Ready() = %v, want HTTP 401 and the setting to fix (PHANTOM_TOKEN)", err)
		}
		return nil
	})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	d := forwarder.Defaults().NATS
	testkit.WaitFor(t, 10*time.Second, func() error {
		cons, err := js.Consumer(context.Background(), d.Stream, d.Consumer)
		if err != nil {
			return err
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		if held := info.NumPending + uint64(info.NumAckPending); held != uint64(len(s.events)) || info.NumAckPending == 0 {
			return fmt.Errorf("consumer: %d pending + %d unacknowledged, want all %d held and some taken",
				info.NumPending, info.NumAckPending, len(s.events))
		}
		return nil
	})
	if got, err := countStored(soarClient(t, soar.URL)); err != nil || got != 0 {
		t.Fatalf("SOAR holds %d artifacts (%v) while it refuses the token", got, err)
	}
	testkit.WaitFor(t, 10*time.Second, func() error {
		for _, line := range strings.Split(fw.logs.String(), "\n") {
			if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "HTTP 401") && strings.Contains(line, "PHANTOM_TOKEN") {
				return nil
			}
		}
		return fmt.Errorf("no warning in the log names the refusal and PHANTOM_TOKEN:\n%s", tail(fw.logs.String(), 3000))
	})

	if err := os.WriteFile(tokenFile, []byte(testkit.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := soarClient(t, soar.URL)
	checkDelivered(t, c, s, 90*time.Second)
	waitIdle(t, nc, 10*time.Second)
	testkit.WaitFor(t, 10*time.Second, fw.fw.Ready)
	for _, reason := range []string{forwarder.ReasonInvalidEvent, forwarder.ReasonPhantomRejected, forwarder.ReasonTooLarge} {
		if got := metric(t, fw.fw, forwarder.MetricDeadLettered, fmt.Sprintf("reason=%q", reason)); got != 0 {
			t.Errorf("%s{reason=%q} = %v; a refused token must hold alerts, not drop them", forwarder.MetricDeadLettered, reason, got)
		}
	}
	for _, secret := range []string{"revoked-token", testkit.Token} {
		if strings.Contains(fw.logs.String(), secret) {
			t.Errorf("the log shows a token")
		}
	}
}

// TestConcurrentWorkersKeepIncidentsWhole gives every alert a batch of its
// own and many workers, so that batches race each other: the alerts of one
// incident must still land in one case.
func TestConcurrentWorkersKeepIncidentsWhole(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	cfg := baseConfig(n.URL(), soar.URL)
	cfg.BatchSize = 1
	cfg.Workers = 8
	startForwarder(t, cfg)
	nc := connect(t, n.URL())
	s := newStream("race", 20, 5, time.Now().UTC(), 10*time.Millisecond)
	s.publishAll(t, nc, 0, len(s.events))
	checkDelivered(t, soarClient(t, soar.URL), s, 30*time.Second)
}

// connectRetrying is a publisher connection that survives server restarts.
func connectRetrying(t *testing.T, urls string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// NATS that cannot be reached, or runs without JetStream, is named as the
// problem in the log, with what to do; not as a timeout.
func TestNATSProblemsAreSaid(t *testing.T) {
	t.Parallel()
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	port := freePort(t)
	down := launchForwarder(t, baseConfig(fmt.Sprintf("nats://127.0.0.1:%d", port), soar.URL))
	noJS, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	noJS.Start()
	t.Cleanup(noJS.Shutdown)
	if !noJS.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	plain := launchForwarder(t, baseConfig(noJS.ClientURL(), soar.URL))
	testkit.WaitFor(t, 30*time.Second, func() error {
		if logs := down.logs.String(); !strings.Contains(logs, fmt.Sprintf("cannot reach NATS at nats://127.0.0.1:%d", port)) || !strings.Contains(logs, "connection refused") {
			return fmt.Errorf("the log does not say NATS is unreachable:\n%s", tailLines(logs, 5))
		}
		if logs := plain.logs.String(); !strings.Contains(logs, "has no JetStream: start nats-server with -js") {
			return fmt.Errorf("the log does not say JetStream is off:\n%s", tailLines(logs, 5))
		}
		return nil
	})
}
