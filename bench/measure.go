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

// result is what one scenario measured.
type result struct {
	sc   scenario
	fw   fwResult
	base baselineResult
	// lim holds the limits, measured for the scenarios without added
	// latency only (nil otherwise).
	lim *limits
}

// fwResult is what the forwarder did in one scenario.
type fwResult struct {
	alerts              int     // alerts of the throughput run
	rate                float64 // alerts/s into SOAR, between 10% and 90%
	writeReqs, restReqs int64
	cpu                 time.Duration // the forwarder's CPU time over the throughput run
	cpuShare            float64       // its share of the CPU used by it and this process
	peakInFlight        int64         // most requests in flight at SOAR during the throughput run
	p50, p99, pmax      time.Duration // publish to stored, latency run
	latencyAlerts       int
	peakRSS             int64 // VmHWM, the larger of both runs
}

// limits are the rates of NATS and the mock SOAR alone.
type limits struct {
	nats, mock float64
	mockReqs   int
}

// step is one measurement of a scenario, in a folder of its own.
type step struct {
	name string
	run  func(ctx context.Context, dir string) error
}

// runScenario measures one scenario: the limits (without added latency),
// the baseline, then the forwarder's throughput and latency.
func (h *harness) runScenario(ctx context.Context, sc scenario) (result, error) {
	r := result{sc: sc}
	w := newWorkload(h.o.events, sc.incidents, time.Now().UTC().Add(-time.Minute))
	var steps []step
	if sc.latency == 0 {
		r.lim = &limits{}
		steps = append(steps,
			step{"limit: JetStream to a consumer that only acknowledges", func(ctx context.Context, dir string) (err error) {
				r.lim.nats, err = natsLimit(ctx, dir, w, h.o.batchSize())
				return err
			}},
			step{"limit: mock SOAR storing the forwarder's requests", func(ctx context.Context, dir string) (err error) {
				r.lim.mock, r.lim.mockReqs, err = mockLimit(ctx, dir, w, h.o.batchSize(), h.o.inFlight())
				return err
			}})
	}
	steps = append(steps,
		step{fmt.Sprintf("baseline: one synchronous POST per alert, up to %d alerts or %s", h.o.baselineEvents, h.o.baselineDuration),
			func(ctx context.Context, dir string) (err error) {
				r.base, err = runBaseline(ctx, dir, sc.latency, w, h.o.baselineEvents, h.o.baselineDuration)
				return err
			}},
		step{fmt.Sprintf("forwarder throughput: draining %d alerts", len(w.events)), func(ctx context.Context, dir string) error {
			return h.throughput(ctx, sc, dir, w, &r.fw)
		}},
		step{fmt.Sprintf("forwarder latency: %d alerts/s for %s", h.o.rate, h.o.duration), func(ctx context.Context, dir string) error {
			return h.latency(ctx, sc, dir, &r.fw)
		}})
	for i, s := range steps {
		fmt.Fprintf(h.log, "[%s] %s (load %s)...\n", sc, s.name, loadAverage())
		if err := s.run(ctx, filepath.Join(h.dir, fmt.Sprintf("%s-%d-%d", sc.latency, sc.incidents, i))); err != nil {
			return r, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return r, nil
}

// throughput preloads the stream, starts the forwarder and measures the
// rate at which SOAR receives the alerts, between 10% and 90% of them.
func (h *harness) throughput(ctx context.Context, sc scenario, dir string, w *workload, r *fwResult) error {
	n, err := startNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return err
	}
	defer n.close()
	d := forwarder.Defaults().NATS
	if err := n.preloadStream(ctx, d.Stream, d.StreamSubjects, w); err != nil {
		return err
	}
	soar, url, stopMock, err := startMock(ctx, filepath.Join(dir, "soar"), sc.latency, nil)
	if err != nil {
		return err
	}
	defer stopMock()
	self0 := selfCPU()
	fw, err := h.startForwarder(ctx, n.url(), url)
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
	if st.Duplicates != 0 {
		return fmt.Errorf("SOAR refused %d duplicates in a run without faults", st.Duplicates)
	}
	rss, cpu, err := fw.usage()
	if err != nil {
		return err
	}
	r.alerts, r.rate = int(st.ArtifactsCreated), rate
	r.writeReqs, r.restReqs = writeRequests(st), restRequests(st)
	r.peakInFlight = st.PeakInFlight
	r.peakRSS, r.cpu = max(r.peakRSS, rss), cpu
	r.cpuShare = cpu.Seconds() / (cpu + harness).Seconds()
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
func (h *harness) latency(ctx context.Context, sc scenario, dir string, r *fwResult) error {
	n, err := startNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return err
	}
	defer n.close()
	rec := newRecorder()
	_, url, stopMock, err := startMock(ctx, filepath.Join(dir, "soar"), sc.latency, rec.wrap)
	if err != nil {
		return err
	}
	defer stopMock()
	fw, err := h.startForwarder(ctx, n.url(), url)
	if err != nil {
		return err
	}
	defer fw.stop()

	total := int(h.o.duration.Seconds() * float64(h.o.rate))
	published, err := publishAtRate(n.nc, total, h.o.rate, sc.incidents)
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
	r.latencyAlerts = len(lat)
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
func publishAtRate(nc *nats.Conn, total, rate, incidents int) (map[string]time.Time, error) {
	published := make(map[string]time.Time, total)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < total; {
		<-tick.C
		due := min(total, int(time.Since(start).Seconds()*float64(rate)))
		for ; i < due; i++ {
			now := time.Now()
			ev := shellAlert(i, incidentOf(i, incidents), now.UTC())
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
