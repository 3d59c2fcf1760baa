// Command bench measures the forwarder on this machine, against the limits
// of what it runs on.
//
// It starts an embedded NATS server with JetStream and the mock SOAR (both
// in this process, storing in a temporary folder), builds the forwarder and
// runs it as a child process, and feeds it realistic "Terminal shell in
// container" alerts. For each grouping mode (on: many alerts per incident;
// off: a case per alert) it reports:
//
//   - throughput: the rate at which the forwarder drains a stream holding
//     --events alerts into SOAR, HTTP requests per alert, the forwarder's
//     CPU time and peak RSS;
//   - latency: publish to stored in SOAR, p50/p99/max, with alerts
//     published as falcosidekick does (plain NATS publishes) at --rate per
//     second for --duration;
//   - the limits, measured in the same run on fresh storage: the rate at
//     which the same JetStream set-up hands the same alerts to a consumer
//     that only acknowledges them, and the rate at which the mock SOAR
//     stores the same requests the forwarder sends, with as many in flight;
//     and the forwarder's rate as a share of the smaller one.
//
// Run it from the module root: go run ./bench (or make bench).
//
// The files: options.go (flags and grouping modes), workload.go (the
// alerts), nats.go and mock.go (the two servers), forwarder.go (the
// forwarder under test, a child process), limits.go (the baseline: NATS
// and the mock SOAR alone), measure.go (throughput and latency of the
// forwarder) and report.go (the table).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
)

const (
	soarUser     = "bench"
	soarPassword = "bench-password-not-secret"
	// activeIncidents is how many incidents emit alerts at the same time
	// with grouping on: their alerts interleave in the stream.
	activeIncidents = 10
	// waitLimit bounds every wait of a run.
	waitLimit = 10 * time.Minute
	// pollInterval is how often a wait looks again.
	pollInterval = 20 * time.Millisecond
)

func main() { cmdmain.Main(Run) }

// Run runs the harness with args (without the program name).
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	return cmdmain.Execute(ctx, newCommand(streams, getenv), args)
}

func newCommand(streams genericiooptions.IOStreams, getenv func(string) string) *cobra.Command {
	o := defaultOptions()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the forwarder on this machine, against the limits of NATS and the mock SOAR",
		Long: `Measure the forwarder on this machine, against the limits of what it runs on:
throughput and latency with grouping on and off, beside the rate at which
JetStream and the mock SOAR alone take the same alerts. Run it from the
module root (it builds ./cmd/falco-phantom-forwarder). See docs/benchmarks.md.`,
		Example:       `  go run ./bench --events 20000 --single-events 5000 --duration 5s`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			modes, err := o.validate()
			if err != nil {
				return err
			}
			return run(cmd.Context(), o, modes, setFlags(cmd), streams, getenv)
		},
	}
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	o.addFlags(cmd)
	return cmd
}

// setFlags lists the flags given on the command line, as --name=value.
func setFlags(cmd *cobra.Command) []string {
	var out []string
	cmd.Flags().Visit(func(f *pflag.Flag) { out = append(out, "--"+f.Name+"="+f.Value.String()) })
	return out
}

// run measures every mode and prints the table; args are the flags given,
// echoed in the report.
func run(ctx context.Context, o options, modes []mode, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	dir, err := os.MkdirTemp("", "falco-phantom-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out := streams.Out
	h := &harness{o: o, dir: dir, log: out, getenv: getenv, bin: o.forwarder}
	if h.bin == "" {
		if h.bin, err = buildForwarder(ctx, dir, out, streams.ErrOut); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "machine: %s\n", machine())
	fmt.Fprintf(out, "command: go run ./bench %s\n", strings.Join(args, " "))
	fmt.Fprintf(out, "forwarder: BATCH_SIZE=%d WORKERS=%d; %d alerts per throughput run (%d with grouping off), %d/s for %s in the latency run\n\n",
		o.batch, o.workers, o.events, o.singleEvents, o.rate, o.duration)

	var results []result
	for _, m := range modes {
		r, err := h.runMode(ctx, m)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		results = append(results, r)
	}
	fmt.Fprintf(out, "\nload average at the end: %s\n\n", loadAverage())
	printResults(out, results)
	return nil
}

// startCPUProfile profiles this process (NATS and the mock SOAR) into
// file until stop is called.
func startCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// buildForwarder builds ./cmd/falco-phantom-forwarder into dir.
func buildForwarder(ctx context.Context, dir string, log, stderr io.Writer) (string, error) {
	fmt.Fprintln(log, "building the forwarder...")
	bin := filepath.Join(dir, "falco-phantom-forwarder")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/falco-phantom-forwarder")
	build.Stdout, build.Stderr = stderr, stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build the forwarder (run from the module root): %w", err)
	}
	return bin, nil
}
