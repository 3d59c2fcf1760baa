package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one row of the report: what it is, its target, and its value
// in a result.
type figure struct {
	name, target string
	value        func(r result) string
}

var figures = []figure{
	{"alerts delivered into SOAR per second", ">= 20000 (on)", func(r result) string { return fmt.Sprintf("%.0f", r.throughput) }},
	{"HTTP write requests per alert", "", func(r result) string { return fmt.Sprintf("%.3f", float64(r.writeRequests)/float64(r.delivered)) }},
	{"HTTP requests per alert (all)", "", func(r result) string { return fmt.Sprintf("%.3f", float64(r.allRequests)/float64(r.delivered)) }},
	{"latency p50, publish to stored", "", func(r result) string { return ms(r.p50) }},
	{"latency p99, publish to stored", "< 100 ms", func(r result) string { return ms(r.p99) }},
	{"latency max, publish to stored", "", func(r result) string { return ms(r.pmax) }},
	{"forwarder peak RSS", "< 64 MiB", func(r result) string { return fmt.Sprintf("%.1f MiB", float64(r.peakRSS)/(1<<20)) }},
	{"forwarder CPU per 1000 alerts", "", func(r result) string { return ms(r.forwarderCPU * 1000 / time.Duration(max(r.delivered, 1))) }},
	{"CPU share: forwarder / NATS+SOAR", "", func(r result) string {
		return fmt.Sprintf("%.0f%% / %.0f%%", 100*r.fwCPUShare, 100*r.harnessCPUShare)
	}},
	{"limit: JetStream to a do-nothing consumer", "", func(r result) string { return fmt.Sprintf("%.0f/s", r.natsLimit) }},
	{"limit: mock SOAR storing the same requests", "", func(r result) string {
		return fmt.Sprintf("%.0f/s (%d req)", r.mockLimit, r.mockLimitReqs)
	}},
	{"forwarder / smaller limit", "", func(r result) string {
		return fmt.Sprintf("%.0f%%", 100*r.throughput/min(r.natsLimit, r.mockLimit))
	}},
}

// printResults prints the table of every figure, a column per mode.
func printResults(out io.Writer, results []result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"", "target"}
	for _, r := range results {
		head = append(head, r.mode.name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, f := range figures {
		cells := []string{f.name, f.target}
		for _, r := range results {
			cells = append(cells, f.value(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	_ = tw.Flush()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

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
