package forwarder_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// BenchmarkDelivery runs the whole pipeline in this process (embedded NATS,
// the mock SOAR, the forwarder) on b.N alerts of 10 or 1,000 interleaved
// incidents, published before the forwarder starts: alerts/s through it,
// for profiles (go test -bench Delivery -cpuprofile cpu.out). The
// end-to-end figures, with the forwarder in a process of its own, come
// from the harness (go run ./bench).
func BenchmarkDelivery(b *testing.B) {
	for _, incidents := range []int{10, 1000} {
		b.Run(fmt.Sprintf("incidents=%d", incidents), func(b *testing.B) {
			n := testkit.StartNATS(b)
			soar := testkit.StartPhantom(b, mockphantom.Config{})
			nc, err := natsConnect(n.URL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			c, err := phantom.New(phantom.Config{BaseURL: soar.URL, Credentials: phantom.StaticCredentials{User: testkit.User, Password: testkit.Password}})
			if err != nil {
				b.Fatal(err)
			}
			cfg := baseConfig(n.URL(), soar.URL)
			cfg.GroupWindow = 5 * time.Minute
			fw, stop, err := newRunning(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer stop()
			for !fw.Consuming() {
				time.Sleep(10 * time.Millisecond)
			}
			per := max(1, b.N/incidents)
			s := newStream("bench", incidents, per, time.Now().UTC(), time.Millisecond)
			bodies := make([][]byte, len(s.events))
			for i, ev := range s.events {
				bodies[i], _ = ev.MarshalJSON()
			}
			b.ResetTimer()
			start := time.Now()
			for i, ev := range s.events {
				if err := nc.Publish(ev.Subject(), bodies[i]); err != nil {
					b.Fatal(err)
				}
			}
			if err := nc.Flush(); err != nil {
				b.Fatal(err)
			}
			for {
				got, err := countStored(c)
				if err == nil && got >= len(s.events) {
					break
				}
				if time.Since(start) > 5*time.Minute {
					b.Fatalf("SOAR holds %d of %d alerts after 5 min", got, len(s.events))
				}
				time.Sleep(10 * time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(len(s.events))/time.Since(start).Seconds(), "alerts/s")
		})
	}
}

func natsConnect(url string) (*nats.Conn, error) { return nats.Connect(url) }

// newRunning runs a forwarder until stop stops it.
func newRunning(cfg forwarder.Config) (fw *forwarder.Forwarder, stop func(), err error) {
	fw, err = forwarder.New(cfg, nil)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	return fw, func() { cancel(); <-done }, nil
}
