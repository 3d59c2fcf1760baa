package main

// The forwarder under test: its throughput draining a full stream, and its
// latency with alerts published live.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/poll"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
)

// harness is one run of the command: its options, the forwarder binary
// under test, and the folder every measurement stores in.
type harness struct {
	o      options
	bin    string
	dir    string
	log    io.Writer
	getenv func(string) string
}

// result is what one mode measured.
type result struct {
	mode                        mode
	delivered                   int
	throughput                  float64 // alerts/s into SOAR
	writeRequests, allRequests  int64
	forwarderCPU                time.Duration
	p50, p99, pmax              time.Duration
	latencyEvents               int
	peakRSS                     int64
	natsLimit, mockLimit        float64
	natsLimitN, mockLimitN      int
	mockLimitReqs               int
	harnessCPUShare, fwCPUShare float64
}

// runMode measures one grouping mode: the limits, then the forwarder's
// throughput, then its latency.
func (h *harness) runMode(ctx context.Context, m mode) (result, error) {
	r := result{mode: m}
	w := newWorkload(m.events, m.perIncident, time.Now().UTC().Add(-time.Minute))
	dir := func(what string) string { return filepath.Join(h.dir, m.name+"-"+what) }

	fmt.Fprintf(h.log, "[%s] limit: JetStream to a consumer that only acknowledges...\n", m.name)
	var err error
	if r.natsLimit, err = natsLimit(ctx, dir("nats-limit"), w, h.o.batch); err != nil {
		return r, fmt.Errorf("NATS limit: %w", err)
	}
	r.natsLimitN = len(w.events)
	fmt.Fprintf(h.log, "[%s] limit: mock SOAR storing the forwarder's requests...\n", m.name)
	if r.mockLimit, r.mockLimitReqs, err = mockLimit(ctx, dir("mock-limit"), w, h.o.batch, h.o.workers); err != nil {
		return r, fmt.Errorf("mock SOAR limit: %w", err)
	}
	r.mockLimitN = len(w.events)

	fmt.Fprintf(h.log, "[%s] throughput: forwarder draining %d alerts...\n", m.name, len(w.events))
	if err := h.throughput(ctx, m, dir("throughput"), w, &r); err != nil {
		return r, fmt.Errorf("throughput: %w", err)
	}
	fmt.Fprintf(h.log, "[%s] latency: %d alerts/s for %s...\n", m.name, h.o.rate, h.o.duration)
	if err := h.latency(ctx, m, dir("latency"), &r); err != nil {
		return r, fmt.Errorf("latency: %w", err)
	}
	return r, nil
}

// throughput preloads the stream, starts the forwarder and measures the
// rate at which SOAR receives the alerts, between 10% and 90% of them.
func (h *harness) throughput(ctx context.Context, m mode, dir string, w *workload, r *result) error {
	n, err := startNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return err
	}
	defer n.close()
	d := forwarder.Defaults().NATS
	if err := n.preloadStream(ctx, d.Stream, d.StreamSubjects, w); err != nil {
		return err
	}
	soar, url, stopMock, err := startMock(ctx, filepath.Join(dir, "soar"), 0, nil)
	if err != nil {
		return err
	}
	defer stopMock()
	self0 := selfCPU()
	fw, err := h.startForwarder(ctx, n.url(), url, m)
	if err != nil {
		return err
	}
	defer fw.stop()
	total := int64(len(w.events))
	rate, err := deliveryRate(ctx, soar, total)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, fw.logText())
	}
	harness := selfCPU() - self0
	st := soar.Stats()
	r.delivered = int(st.ArtifactsCreated)
	r.throughput = rate
	r.writeRequests = writeRequests(st)
	r.allRequests = st.Requests
	rss, cpu, err := fw.usage()
	if err != nil {
		return err
	}
	r.peakRSS, r.forwarderCPU = max(r.peakRSS, rss), cpu
	r.fwCPUShare = cpu.Seconds() / (cpu + harness).Seconds()
	r.harnessCPUShare = 1 - r.fwCPUShare
	if st.Duplicates != 0 {
		return fmt.Errorf("SOAR refused %d duplicates in a run without faults", st.Duplicates)
	}
	return nil
}

// deliveryRate waits until soar holds total artifacts and returns the rate
// at which they arrived between 10% and 90% of them.
func deliveryRate(ctx context.Context, soar *mockphantom.Server, total int64) (float64, error) {
	var t10, t90 time.Time
	var n10, n90 int64
	err := poll.Until(ctx, waitLimit, pollInterval, func(context.Context) error {
		got := soar.Stats().ArtifactsCreated
		if t10.IsZero() && got >= total/10 {
			t10, n10 = time.Now(), got
		}
		if t90.IsZero() && got >= total*9/10 {
			t90, n90 = time.Now(), got
		}
		if got < total {
			return fmt.Errorf("SOAR holds %d of %d alerts", got, total)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return float64(n90-n10) / t90.Sub(t10).Seconds(), nil
}

// latency runs the forwarder live and publishes alerts as falcosidekick
// does at o.rate per second, each with the time it was published; the mock
// SOAR records when each was stored.
func (h *harness) latency(ctx context.Context, m mode, dir string, r *result) error {
	n, err := startNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return err
	}
	defer n.close()
	rec := newRecorder()
	_, url, stopMock, err := startMock(ctx, filepath.Join(dir, "soar"), 0, rec.wrap)
	if err != nil {
		return err
	}
	defer stopMock()
	fw, err := h.startForwarder(ctx, n.url(), url, m)
	if err != nil {
		return err
	}
	defer fw.stop()

	total := int(h.o.duration.Seconds() * float64(h.o.rate))
	published, err := publishAtRate(n.nc, total, h.o.rate, m.perIncident)
	if err != nil {
		return err
	}
	if err := poll.Until(ctx, waitLimit, pollInterval, func(context.Context) error {
		if got := rec.count(); got < total {
			return fmt.Errorf("SOAR holds %d of %d alerts", got, total)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%w\n%s", err, fw.logText())
	}
	lat, err := latencies(published, rec.times())
	if err != nil {
		return err
	}
	r.latencyEvents = len(lat)
	r.p50, r.p99, r.pmax = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	rss, _, err := fw.usage()
	if err != nil {
		return err
	}
	r.peakRSS = max(r.peakRSS, rss)
	return nil
}

// publishAtRate publishes total alerts as plain NATS publishes, as
// falcosidekick does, at rate per second, and returns when each was
// published, by Falco event ID.
func publishAtRate(nc *nats.Conn, total, rate, perIncident int) (map[string]time.Time, error) {
	published := make(map[string]time.Time, total)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < total; {
		<-tick.C
		due := min(total, int(time.Since(start).Seconds()*float64(rate)))
		for ; i < due; i++ {
			now := time.Now()
			ev := shellAlert(i, incidentOf(i, perIncident), now.UTC())
			b, err := json.Marshal(ev)
			if err != nil {
				return nil, err
			}
			published[ev.ID()] = now
			if err := nc.Publish(ev.Subject(), b); err != nil {
				return nil, fmt.Errorf("publish: %w", err)
			}
		}
	}
	return published, nil
}

// latencies returns, sorted, how long each published alert took to be
// stored; every stored alert must be one that was published.
func latencies(published, stored map[string]time.Time) ([]time.Duration, error) {
	var lat []time.Duration
	for id, at := range stored {
		if p, ok := published[id]; ok {
			lat = append(lat, at.Sub(p))
		}
	}
	if len(lat) != len(published) {
		return nil, fmt.Errorf("%d stored alerts match a published one, want %d", len(lat), len(published))
	}
	slices.Sort(lat)
	return lat, nil
}

// selfCPU is the CPU time this process (NATS and the mock SOAR) used so
// far.
func selfCPU() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
