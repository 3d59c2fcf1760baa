package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
)

// options are the command's flags.
type options struct {
	latencies        []time.Duration
	incidents        []int
	events           int
	baselineEvents   int
	baselineDuration time.Duration
	rate             int
	duration         time.Duration
	// batch, workers, maxInFlight and maxHeld are the forwarder's
	// BATCH_SIZE, WORKERS, MAX_IN_FLIGHT and MAX_HELD_EVENTS; 0 leaves the
	// forwarder's default.
	batch, workers, maxInFlight, maxHeld int
	forwarder                            string
	cpuProfile                           string
}

func defaultOptions() options {
	return options{
		latencies: []time.Duration{0, 20 * time.Millisecond}, incidents: []int{10, 1000},
		events: 20_000, baselineEvents: 1000, baselineDuration: 10 * time.Second,
		rate: 1000, duration: 10 * time.Second,
	}
}

func (o *options) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.DurationSliceVar(&o.latencies, "soar-latency", o.latencies, "latencies the mock SOAR adds to every /rest request, one scenario each (comma separated)")
	f.IntSliceVar(&o.incidents, "incidents", o.incidents, "incidents whose alerts interleave in the stream, one scenario each: alert i belongs to incident i % N")
	f.IntVar(&o.events, "events", o.events, "alerts per forwarder throughput run")
	f.IntVar(&o.baselineEvents, "baseline-events", o.baselineEvents, "most alerts per baseline run (one synchronous POST per alert)")
	f.DurationVar(&o.baselineDuration, "baseline-duration", o.baselineDuration, "longest baseline run; it stops at this or at --baseline-events, whichever comes first")
	f.IntVar(&o.rate, "rate", o.rate, "alerts per second of the forwarder's latency run")
	f.DurationVar(&o.duration, "duration", o.duration, "length of the forwarder's latency run")
	f.IntVar(&o.batch, "batch", o.batch, "forwarder BATCH_SIZE (default: the forwarder's own; figures are then for tuned settings)")
	f.IntVar(&o.workers, "workers", o.workers, "forwarder WORKERS (default: the forwarder's own)")
	f.IntVar(&o.maxInFlight, "max-in-flight", o.maxInFlight, "forwarder MAX_IN_FLIGHT (default: the forwarder's own)")
	f.IntVar(&o.maxHeld, "max-held-events", o.maxHeld, "forwarder MAX_HELD_EVENTS (default: the forwarder's own)")
	f.StringVar(&o.forwarder, "forwarder", o.forwarder, "forwarder binary to run (default: go build ./cmd/falco-phantom-forwarder)")
	f.StringVar(&o.cpuProfile, "cpuprofile", o.cpuProfile, "write a CPU profile of this process (NATS, the mock SOAR, the baseline) to `file`")
}

// scenario is one row of the report: how slow SOAR is, and how many
// incidents interleave in the stream.
type scenario struct {
	latency   time.Duration
	incidents int
}

func (s scenario) String() string {
	return fmt.Sprintf("SOAR %s, %s incidents", latencyName(s.latency), thousands(float64(s.incidents)))
}

// latencyName writes a latency as the report does: 0 ms, 20 ms, 1.5 ms.
func latencyName(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64) + " ms"
}

// validate checks the flags and returns the scenarios to run: every
// latency with every number of incidents, in the order the flags list
// them.
func (o options) validate() ([]scenario, error) {
	switch {
	case o.events < 100:
		return nil, errors.New("--events must be at least 100")
	case o.baselineEvents < 1 || o.baselineDuration <= 0:
		return nil, errors.New("--baseline-events and --baseline-duration must be positive")
	case o.rate < 1 || o.duration <= 0:
		return nil, errors.New("--rate and --duration must be positive")
	case o.batch < 0 || o.workers < 0 || o.maxInFlight < 0 || o.maxHeld < 0:
		return nil, errors.New("--batch, --workers, --max-in-flight and --max-held-events must not be negative (0: the forwarder's default)")
	case len(o.latencies) == 0 || len(o.incidents) == 0:
		return nil, errors.New("--soar-latency and --incidents must each list at least one value")
	}
	var out []scenario
	for _, l := range o.latencies {
		if l < 0 {
			return nil, fmt.Errorf("--soar-latency: %s is negative", l)
		}
		for _, n := range o.incidents {
			if n < 1 {
				return nil, fmt.Errorf("--incidents: %d is not positive", n)
			}
			out = append(out, scenario{latency: l, incidents: n})
		}
	}
	return out, nil
}

// tuned lists the forwarder settings given on the command line, as
// environment variables; none means the forwarder runs with its defaults.
func (o options) tuned() []string {
	var env []string
	for _, s := range []struct {
		name string
		v    int
	}{{"BATCH_SIZE", o.batch}, {"WORKERS", o.workers}, {"MAX_IN_FLIGHT", o.maxInFlight}, {"MAX_HELD_EVENTS", o.maxHeld}} {
		if s.v > 0 {
			env = append(env, s.name+"="+strconv.Itoa(s.v))
		}
	}
	return env
}

// batchSize and inFlight are the forwarder's batch size and bound on
// requests in flight in this run: the defaults unless tuned.
func (o options) batchSize() int { return orDefault(o.batch, forwarder.Defaults().BatchSize) }
func (o options) inFlight() int  { return orDefault(o.maxInFlight, forwarder.Defaults().MaxInFlight) }

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
