package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// options are the command's flags.
type options struct {
	events       int
	singleEvents int
	rate         int
	duration     time.Duration
	perIncident  int
	batch        int
	workers      int
	modes        string
	forwarder    string
	cpuProfile   string
}

func defaultOptions() options {
	return options{
		events: 100_000, singleEvents: 20_000, rate: 1000, duration: 20 * time.Second,
		perIncident: 100, batch: 500, workers: 2, modes: "grouped,single",
	}
}

func (o *options) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.IntVar(&o.events, "events", o.events, "alerts per throughput run (and per limit measurement) with grouping on")
	f.IntVar(&o.singleEvents, "single-events", o.singleEvents, "the same with grouping off (a case per alert is much slower)")
	f.IntVar(&o.rate, "rate", o.rate, "alerts per second of the latency run")
	f.DurationVar(&o.duration, "duration", o.duration, "length of the latency run")
	f.IntVar(&o.perIncident, "per-incident", o.perIncident, "alerts per incident with grouping on")
	f.IntVar(&o.batch, "batch", o.batch, "forwarder BATCH_SIZE")
	f.IntVar(&o.workers, "workers", o.workers, "forwarder WORKERS")
	f.StringVar(&o.modes, "modes", o.modes, "grouping modes to run: grouped (GROUP_WINDOW=5m), single (GROUP_WINDOW=0)")
	f.StringVar(&o.forwarder, "forwarder", o.forwarder, "forwarder binary to run (default: go build ./cmd/falco-phantom-forwarder)")
	f.StringVar(&o.cpuProfile, "cpuprofile", o.cpuProfile, "write a CPU profile of this process (NATS and the mock SOAR) to `file`")
}

// mode is one grouping set-up.
type mode struct {
	name        string
	window      time.Duration // GROUP_WINDOW
	perIncident int           // alerts per incident in the workload
	events      int           // alerts per throughput run
}

// validate checks the flags and returns the modes to run, in the order
// --modes names them.
func (o options) validate() ([]mode, error) {
	if o.events < 100 || o.singleEvents < 100 || o.rate < 1 || o.duration <= 0 || o.perIncident < 1 || o.batch < 1 || o.workers < 1 {
		return nil, errors.New("--events and --single-events must be at least 100, and --rate, --duration, --per-incident, --batch and --workers positive")
	}
	var modes []mode
	for _, name := range strings.Split(o.modes, ",") {
		switch strings.TrimSpace(name) {
		case "grouped":
			modes = append(modes, mode{name: "grouping on", window: 5 * time.Minute, perIncident: o.perIncident, events: o.events})
		case "single":
			modes = append(modes, mode{name: "grouping off", window: 0, perIncident: 1, events: o.singleEvents})
		default:
			return nil, fmt.Errorf("--modes: unknown mode %q (want grouped, single)", name)
		}
	}
	return modes, nil
}
