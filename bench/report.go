package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
)

// printHeader prints what the figures are taken on and with: the machine
// (with its load average now), the command line, and the forwarder's
// settings.
func printHeader(out io.Writer, o options, args []string) {
	fmt.Fprintf(out, "machine: %s\n", machine())
	fmt.Fprintf(out, "command: %s\n", strings.Join(append([]string{"go run ./bench"}, args...), " "))
	d := forwarder.Defaults()
	if tuned := o.tuned(); len(tuned) > 0 {
		fmt.Fprintf(out, "forwarder: TUNED with %s (the rest its defaults): the figures are for these settings, not for the defaults the targets are about\n",
			strings.Join(tuned, " "))
	} else {
		fmt.Fprintf(out, "forwarder: its defaults (BATCH_SIZE=%d WORKERS=%d MAX_IN_FLIGHT=%d MAX_HELD_EVENTS=%d GROUP_WINDOW=%s in this build)\n",
			d.BatchSize, d.Workers, d.MaxInFlight, d.MaxHeldEvents, d.GroupWindow)
	}
	fmt.Fprintf(out, "runs per scenario: forwarder draining %d alerts; baseline up to %d alerts or %s; forwarder latency at %d alerts/s for %s\n\n",
		o.events, o.baselineEvents, o.baselineDuration, o.rate, o.duration)
}

// printReport prints the table of the scenarios, the targets, and the
// details that tell what bounds the figures.
func printReport(out io.Writer, o options, results []result) {
	printTable(out, o, results)
	fmt.Fprintln(out)
	printChecks(out, o, checkTargets(o, results))
	fmt.Fprintln(out)
	printDetails(out, o, results)
}

// printTable prints one row per scenario, the forwarder beside the
// baseline.
func printTable(out io.Writer, o options, results []result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row(tw, "SOAR", "incidents", "alerts/s forwarder", "alerts/s baseline", "forwarder/baseline",
		"writes/alert fw / base", "/rest req/alert fw / base", "p99 at "+thousands(float64(o.rate))+"/s",
		"fw CPU/alert", "fw peak RSS")
	for _, r := range results {
		row(tw, latencyName(r.sc.latency), thousands(float64(r.sc.incidents)),
			thousands(r.fw.rate), thousands(r.base.rate()), ratio(r.fw.rate, r.base.rate()),
			perAlert(r.fw.writeReqs, r.fw.alerts)+" / "+perAlert(r.base.writeReqs, r.base.alerts),
			perAlert(r.fw.restReqs, r.fw.alerts)+" / "+perAlert(r.base.restReqs, r.base.alerts),
			ms(r.fw.lat.p99), micros(r.fw.cpuPerAlert()), mib(r.fw.peakRSS()))
	}
	_ = tw.Flush()
}

// printDetails prints what the main table leaves out and what tells what
// bounds the figures: where the CPU went, how many requests SOAR saw at
// once, the baseline's run and the limits; then the latency run's spread
// and requests.
func printDetails(out io.Writer, o options, results []result) {
	fmt.Fprintf(out, "details, throughput (forwarder draining %s alerts) and baseline:\n", thousands(float64(o.events)))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row(tw, "SOAR", "incidents", "CPU fw / NATS+mock", "peak in flight at SOAR", "fw peak RSS",
		"baseline run", "limit: JetStream alone", "limit: mock alone (requests)", "fw / smaller limit")
	for _, r := range results {
		lim := []string{"-", "-", "-"}
		if r.lim != nil {
			lim = []string{thousands(r.lim.nats) + "/s", fmt.Sprintf("%s/s (%s)", thousands(r.lim.mock), thousands(float64(r.lim.mockReqs))),
				fmt.Sprintf("%.0f%%", 100*r.fw.rate/min(r.lim.nats, r.lim.mock))}
		}
		row(tw, append([]string{latencyName(r.sc.latency), thousands(float64(r.sc.incidents)),
			fmt.Sprintf("%.0f%% / %.0f%%", 100*r.fw.cpuShare, 100*(1-r.fw.cpuShare)),
			strconv.FormatInt(r.fw.peakInFlight, 10), mib(r.fw.rssThroughput),
			fmt.Sprintf("%s alerts in %s (stopped by %s)", thousands(float64(r.base.alerts)), r.base.elapsed.Round(time.Millisecond), r.base.stoppedBy)},
			lim...)...)
	}
	_ = tw.Flush()

	fmt.Fprintf(out, "\ndetails, latency (forwarder, %s alerts/s for %s):\n", thousands(float64(o.rate)), o.duration)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row(tw, "SOAR", "incidents", "alerts", "p50", "p99", "max", "max published at", "> 100 ms",
		"/rest req/alert", "of them case checks", "peak in flight at SOAR", "fw peak RSS")
	for _, r := range results {
		l := r.fw.lat
		row(tw, latencyName(r.sc.latency), thousands(float64(r.sc.incidents)), thousands(float64(l.n)),
			ms(l.p50), ms(l.p99), ms(l.pmax), l.maxAt.Round(100*time.Millisecond).String(), thousands(float64(l.over100ms)),
			perAlert(r.fw.latRestReqs, l.n), perAlert(r.fw.latGets, l.n),
			strconv.FormatInt(r.fw.latPeakInFlight, 10), mib(r.fw.rssLatency))
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\nforwarder alerts/s: drain rate between 10%% and 90%% of the preloaded alerts; baseline alerts/s: alerts stored / its run time.\n")
	fmt.Fprintln(out, "CPU per alert: the forwarder process's CPU time over its throughput run (start-up included) / alerts; peak RSS: its VmHWM, the larger of its two runs.")
	fmt.Fprintln(out, "case checks: GET /rest/container, the forwarder asking SOAR whether cached case ids still hold their cases.")
}

func row(w io.Writer, cells ...string) { fmt.Fprintln(w, strings.Join(cells, "\t")+"\t") }

func (f fwResult) cpuPerAlert() time.Duration {
	return f.cpu / time.Duration(max(f.alerts, 1))
}

// verdict is how a measurement stands against its target.
type verdict int

const (
	// notMeasured: the run has no scenario the target is about.
	notMeasured verdict = iota
	met
	notMet
)

func (v verdict) String() string {
	switch v {
	case met:
		return "met"
	case notMet:
		return "NOT met"
	}
	return "not measured"
}

// target is one of the figures the forwarder is judged by.
type target struct {
	what string
	// about says which scenarios the target is about.
	about func(scenario) bool
	// check returns the figure of r and whether it meets the target.
	check func(r result) (measured string, ok bool)
}

const soarAcrossNetwork = 20 * time.Millisecond

func only(latency time.Duration, incidents int) func(scenario) bool {
	return func(s scenario) bool { return s.latency == latency && s.incidents == incidents }
}

func every(scenario) bool { return true }

// targets are those of the issue. p99 is judged at 1,000 alerts/s only.
func targets(o options) []target {
	atLeast := func(want float64) func(r result) (string, bool) {
		return func(r result) (string, bool) { return thousands(r.fw.rate) + " alerts/s", r.fw.rate >= want }
	}
	timesBaseline := func(r result) (string, bool) {
		return ratio(r.fw.rate, r.base.rate()) + " the baseline", r.base.rate() > 0 && r.fw.rate >= 20*r.base.rate()
	}
	p99 := func(s scenario) bool { return s.latency == soarAcrossNetwork && o.rate == 1000 }
	return []target{
		{">= 3,000 alerts/s, 20 ms SOAR, 10 incidents", only(soarAcrossNetwork, 10), atLeast(3000)},
		{">= 20x the baseline, 20 ms SOAR, 10 incidents", only(soarAcrossNetwork, 10), timesBaseline},
		{">= 1,000 alerts/s, 20 ms SOAR, 1,000 incidents", only(soarAcrossNetwork, 1000), atLeast(1000)},
		{">= 20x the baseline, 20 ms SOAR, 1,000 incidents", only(soarAcrossNetwork, 1000), timesBaseline},
		{">= 5,000 alerts/s, SOAR on the same machine, 10 incidents", only(0, 10), atLeast(5000)},
		{"forwarder CPU <= 50 µs per alert", every, func(r result) (string, bool) {
			return micros(r.fw.cpuPerAlert()), r.fw.cpuPerAlert() <= 50*time.Microsecond
		}},
		{"p99 publish -> stored < 100 ms at 1,000 alerts/s, 20 ms SOAR", p99, func(r result) (string, bool) {
			return ms(r.fw.lat.p99), r.fw.lat.p99 < 100*time.Millisecond
		}},
		{"forwarder peak RSS < 64 MiB", every, func(r result) (string, bool) { return mib(r.fw.peakRSS()), r.fw.peakRSS() < 64<<20 }},
	}
}

// checked is a target against one scenario's figure.
type checked struct {
	target, scenario, measured string
	verdict                    verdict
}

// checkTargets checks every target against each scenario it is about; a
// target no scenario of the run is about is reported as not measured.
func checkTargets(o options, results []result) []checked {
	var out []checked
	for _, t := range targets(o) {
		found := false
		for _, r := range results {
			if !t.about(r.sc) {
				continue
			}
			found = true
			measured, ok := t.check(r)
			v := notMet
			if ok {
				v = met
			}
			out = append(out, checked{t.what, r.sc.String(), measured, v})
		}
		if !found {
			out = append(out, checked{t.what, "no such scenario in this run", "-", notMeasured})
		}
	}
	return out
}

func printChecks(out io.Writer, o options, checks []checked) {
	if len(o.tuned()) > 0 {
		fmt.Fprintln(out, "targets (they are for the defaults; this run was TUNED):")
	} else {
		fmt.Fprintln(out, "targets (for the defaults):")
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, c := range checks {
		fmt.Fprintln(tw, strings.Join([]string{"  " + c.target, c.scenario, c.measured, c.verdict.String()}, "\t"))
	}
	_ = tw.Flush()
}

// thousands writes v rounded to an integer, with thousands separated by
// commas: 12,345.
func thousands(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	s := strconv.FormatInt(int64(math.Round(math.Abs(v))), 10)
	var b strings.Builder
	if v <= -0.5 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fx", a/b)
}

func perAlert(requests int64, alerts int) string {
	if alerts == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", float64(requests)/float64(alerts))
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func micros(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// machine describes this machine for the report.
func machine() string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
		f.Close()
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d CPUs (%s)%s, %s %s/%s, load average %s", runtime.NumCPU(), cpu, mem,
		runtime.Version(), runtime.GOOS, runtime.GOARCH, loadAverage())
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
