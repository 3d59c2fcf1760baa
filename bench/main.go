// Command bench measures the forwarder on this machine, beside a baseline
// that posts one case per alert synchronously, as the 2018 Kubeless
// function did, against the same mock SOAR in the same run.
//
// It starts an embedded NATS server with JetStream and the mock SOAR (both
// in this process, storing in a temporary folder, fresh for every
// measurement), builds the forwarder and runs it as a child process with
// its defaults, and feeds it realistic "Terminal shell in container"
// alerts. It runs one scenario per SOAR latency (--soar-latency, added by
// the mock to every /rest request) and number of incidents whose alerts
// interleave in the stream (--incidents), and reports for each, side by
// side:
//
//   - the forwarder's throughput: the rate at which it drains a stream
//     holding --events alerts into SOAR, HTTP requests per alert, its CPU
//     time per alert and peak RSS;
//   - the baseline's rate on the same set-up (--baseline-events alerts or
//     --baseline-duration, whichever ends first), and its requests per
//     alert;
//   - the forwarder's latency: publish to stored in SOAR, p50/p99/max,
//     with alerts published as falcosidekick does (plain NATS publishes)
//     at --rate per second for --duration;
//   - for the scenarios without added latency, the limits: the rate at
//     which the same JetStream set-up hands the alerts to a consumer that
//     only acknowledges them, and the rate at which the mock SOAR alone
//     stores the very requests the forwarder sent in the throughput run
//     (read back from what it stored);
//   - the targets, each met or not.
//
// Run it from the module root: go run ./bench (or make bench).
//
// The files: options.go (flags and scenarios), workload.go (the alerts),
// nats.go and mock.go (the two servers), forwarder.go (the forwarder under
// test, a child process), baseline.go (one synchronous POST per alert),
// limits.go (NATS and the mock SOAR alone), measure.go (a scenario's
// steps; the forwarder's throughput and latency) and report.go (the table
// and the targets).
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
		Short: "Measure the forwarder on this machine, beside a baseline of one synchronous POST per alert",
		Long: `Measure the forwarder on this machine, with its defaults, beside a baseline
that posts one case per alert synchronously as the 2018 function did, against
the same mock SOAR, for every SOAR latency (--soar-latency) and number of
interleaved incidents (--incidents): alerts/s end to end, requests per alert,
p99 publish to stored at --rate, forwarder CPU per alert, peak RSS, and the
targets. Run it from the module root (it builds ./cmd/falco-phantom-forwarder).
See docs/benchmarks.md.`,
		Example: `  go run ./bench
  go run ./bench --events 2000 --baseline-events 200 --baseline-duration 3s --duration 3s
  go run ./bench --soar-latency 20ms --incidents 1000 --max-in-flight 64`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scenarios, err := o.validate()
			if err != nil {
				return err
			}
			return run(cmd.Context(), o, scenarios, setFlags(cmd), streams, getenv)
		},
	}
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	o.addFlags(cmd)
	return cmd
}

// setFlags lists the flags given on the command line, as --name=value
// (lists comma separated, as they are given).
func setFlags(cmd *cobra.Command) []string {
	var out []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		v := f.Value.String()
		if list, ok := f.Value.(pflag.SliceValue); ok {
			v = strings.Join(list.GetSlice(), ",")
		}
		out = append(out, "--"+f.Name+"="+v)
	})
	return out
}

// run measures every scenario and prints the report; args are the flags
// given, echoed in it.
func run(ctx context.Context, o options, scenarios []scenario, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
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
	printHeader(out, o, args)
	var results []result
	for _, sc := range scenarios {
		r, err := h.runScenario(ctx, sc)
		if err != nil {
			return fmt.Errorf("%s: %w", sc, err)
		}
		results = append(results, r)
	}
	fmt.Fprintf(out, "\nload average at the end: %s\n\n", loadAverage())
	printReport(out, o, results)
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
