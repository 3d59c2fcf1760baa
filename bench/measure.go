package main

// The forwarder under test: its throughput draining a full stream, and its
// latency with alerts published live.

import (
	"context"
	"encoding/json"
	"errors"
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
	// The throughput run.
	alerts              int     // alerts of the run
	rate                float64 // alerts/s into SOAR, between 10% and 90%
	writeReqs, restReqs int64
	cpu                 time.Duration // the forwarder's CPU time over the run
	cpuShare            float64       // its share of the CPU used by it and this process
	peakInFlight        int64         // most requests in flight at SOAR
	rssThroughput       int64         // VmHWM at the end of the run
	// The latency run.
	lat                  latencyStats
	latRestReqs, latGets int64 // /rest requests; of them, checks of cached case ids (GET /rest/container)
	latPeakInFlight      int64
	rssLatency           int64
}

// peakRSS is the forwarder's peak RSS over both runs.
func (f fwResult) peakRSS() int64 { return max(f.rssThroughput, f.rssLatency) }

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

// runScenario measures one scenario, step by step.
func (h *harness) runScenario(ctx context.Context, sc scenario) (result, error) {
	r := result{sc: sc}
	w := newWorkload(h.o.events, sc.incidents, time.Now().UTC().Add(-time.Minute))
	for i, s := range h.steps(sc, w, &r) {
		fmt.Fprintf(h.log, "[%s] %s (load %s)...\n", sc, s.name, loadAverage())
		if err := s.run(ctx, filepath.Join(h.dir, fmt.Sprintf("%s-%d-%d", sc.latency, sc.incidents, i))); err != nil {
			return r, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return r, nil
}

// steps are the measurements of a scenario, each storing what it measured
// in r: the baseline, the forwarder's throughput, the limits (without
// added latency only: the mock SOAR alone replays the requests the
// forwarder sent), and the forwarder's latency.
func (h *harness) steps(sc scenario, w *workload, r *result) []step {
	var sent []request // by the forwarder in the throughput run, when the limits need them
	steps := []step{
		{fmt.Sprintf("baseline: one synchronous POST per alert, up to %d alerts or %s", h.o.baselineEvents, h.o.baselineDuration),
			func(ctx context.Context, dir string) (err error) {
				r.base, err = runBaseline(ctx, dir, sc.latency, w, h.o.baselineEvents, h.o.baselineDuration)
				return err
			}},
		{fmt.Sprintf("forwarder throughput: draining %d alerts", len(w.events)), func(ctx context.Context, dir string) (err error) {
			sent, err = h.throughput(ctx, sc, dir, w, &r.fw, sc.latency == 0)
			return err
		}},
	}
	if sc.latency == 0 {
		r.lim = &limits{}
		steps = append(steps,
			step{"limit: JetStream to a consumer that only acknowledges", func(ctx context.Context, dir string) (err error) {
				r.lim.nats, err = natsLimit(ctx, dir, w, h.o.batchSize())
				return err
			}},
			step{"limit: mock SOAR alone storing the requests the forwarder sent", func(ctx context.Context, dir string) (err error) {
				r.lim.mock, r.lim.mockReqs, err = mockLimit(ctx, dir, w, sent, h.o.inFlight())
				return err
			}})
	}
	return append(steps, step{fmt.Sprintf("forwarder latency: %d alerts/s for %s", h.o.rate, h.o.duration),
		func(ctx context.Context, dir string) error { return h.latency(ctx, sc, dir, &r.fw) }})
}

// throughput preloads the stream, starts the forwarder and measures the
// rate at which SOAR receives the alerts, between 10% and 90% of them.
// With readBack, it returns the requests that carried them, read back
// from SOAR once all are stored.
func (h *harness) throughput(ctx context.Context, sc scenario, dir string, w *workload, r *fwResult, readBack bool) ([]request, error) {
	n, err := startNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return nil, err
	}
	defer n.close()
	d := forwarder.Defaults().NATS
	if err := n.preloadStream(ctx, d.Stream, d.StreamSubjects, w); err != nil {
		return nil, err
	}
	soar, url, stopMock, err := startMock(ctx, filepath.Join(dir, "soar"), sc.latency, nil)
	if err != nil {
		return nil, err
	}
	defer stopMock()
	self0 := selfCPU()
	fw, err := h.startForwarder(ctx, n.url(), url)
	if err != nil {
		return nil, err
	}
	defer fw.stop()
	total := int64(len(w.events))
	rate, err := deliveryRate(ctx, soar, total)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, fw.logText())
	}
	harness := selfCPU() - self0
	rss, cpu, err := fw.usage()
	if err != nil {
		return nil, err
	}
	st := soar.Stats()
	if st.Duplicates != 0 {
		return nil, fmt.Errorf("SOAR refused %d duplicates in a run without faults", st.Duplicates)
	}
	r.alerts, r.rate = int(st.ArtifactsCreated), rate
	r.writeReqs, r.restReqs, r.peakInFlight = writeRequests(st), restRequests(st), st.PeakInFlight
	r.rssThroughput, r.cpu = rss, cpu
	r.cpuShare = cpu.Seconds() / (cpu + harness).Seconds()
	if !readBack {
		return nil, nil
	}
	sent, err := sentRequests(ctx, url, w)
	if err == nil && int64(len(sent)) != r.writeReqs {
		err = fmt.Errorf("%d requests read back from the stored artifacts, but SOAR saw %d writes", len(sent), r.writeReqs)
	}
	return sent, err
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
	soar, url, stopMock, err := startMock(ctx, filepath.Join(dir, "soar"), sc.latency, rec.wrap)
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
	if r.lat, err = latencies(published, rec.times()); err != nil {
		return err
	}
	st := soar.Stats()
	r.latRestReqs, r.latGets, r.latPeakInFlight = restRequests(st), st.ByRoute["GET /rest/container"], st.PeakInFlight
	r.rssLatency, _, err = fw.usage()
	return err
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

// latencyStats sums up how long published alerts took to be stored.
type latencyStats struct {
	n              int
	p50, p99, pmax time.Duration
	over100ms      int
	// maxAt is when the slowest alert was published, from the first
	// publish.
	maxAt time.Duration
}

// latencies returns how long the published alerts took to be stored;
// every published alert must have been stored.
func latencies(published, stored map[string]time.Time) (latencyStats, error) {
	var s latencyStats
	var first, slowest time.Time
	for _, p := range published {
		if first.IsZero() || p.Before(first) {
			first = p
		}
	}
	lat := make([]time.Duration, 0, len(published))
	for id, p := range published {
		at, ok := stored[id]
		if !ok {
			return s, fmt.Errorf("alert %s was published but not stored", id)
		}
		d := at.Sub(p)
		lat = append(lat, d)
		if d > 100*time.Millisecond {
			s.over100ms++
		}
		if d > s.pmax {
			s.pmax, slowest = d, p
		}
	}
	if len(lat) == 0 {
		return s, errors.New("no alert was published")
	}
	slices.Sort(lat)
	s.n, s.p50, s.p99, s.maxAt = len(lat), lat[len(lat)/2], lat[len(lat)*99/100], slowest.Sub(first)
	return s, nil
}

// selfCPU is the CPU time this process (NATS and the mock SOAR) used so
// far.
func selfCPU() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
