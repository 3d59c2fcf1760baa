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
//     -events alerts into SOAR, HTTP requests per alert, the forwarder's
//     CPU time and peak RSS;
//   - latency: publish to stored in SOAR, p50/p99/max, with alerts
//     published as falcosidekick does (plain NATS publishes) at -rate per
//     second for -duration;
//   - the limits, measured in the same run on fresh storage: the rate at
//     which the same JetStream set-up hands the same alerts to a consumer
//     that only acknowledges them, and the rate at which the mock SOAR
//     stores the same requests the forwarder sends, with as many in flight;
//     and the forwarder's rate as a share of the smaller one.
//
// Run it from the module root: go run ./bench (or make bench).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

const (
	soarUser     = "bench"
	soarPassword = "bench-password-not-secret"
	// activeIncidents is how many incidents emit alerts at the same time
	// with grouping on: their alerts interleave in the stream.
	activeIncidents = 10
	// waitLimit bounds every wait of a run.
	waitLimit = 10 * time.Minute
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

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

// mode is one grouping set-up.
type mode struct {
	name        string
	window      time.Duration // GROUP_WINDOW
	perIncident int           // alerts per incident in the workload
	events      int           // alerts per throughput run
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

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.events, "events", 100_000, "alerts per throughput run (and per limit measurement) with grouping on")
	fs.IntVar(&o.singleEvents, "single-events", 20_000, "the same with grouping off (a case per alert is much slower)")
	fs.IntVar(&o.rate, "rate", 1000, "alerts per second of the latency run")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of the latency run")
	fs.IntVar(&o.perIncident, "per-incident", 100, "alerts per incident with grouping on")
	fs.IntVar(&o.batch, "batch", 500, "forwarder BATCH_SIZE")
	fs.IntVar(&o.workers, "workers", 2, "forwarder WORKERS")
	fs.StringVar(&o.modes, "modes", "grouped,single", "grouping modes to run: grouped (GROUP_WINDOW=5m), single (GROUP_WINDOW=0)")
	fs.StringVar(&o.forwarder, "forwarder", "", "forwarder binary to run (default: go build ./cmd/falco-phantom-forwarder)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (NATS and the mock SOAR) to `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.events < 100 || o.singleEvents < 100 || o.rate < 1 || o.duration <= 0 || o.perIncident < 1 || o.batch < 1 || o.workers < 1 {
		return errors.New("-events and -single-events must be at least 100, and -rate, -duration, -per-incident, -batch and -workers positive")
	}
	var modes []mode
	for _, name := range strings.Split(o.modes, ",") {
		switch strings.TrimSpace(name) {
		case "grouped":
			modes = append(modes, mode{name: "grouping on", window: 5 * time.Minute, perIncident: o.perIncident, events: o.events})
		case "single":
			modes = append(modes, mode{name: "grouping off", window: 0, perIncident: 1, events: o.singleEvents})
		default:
			return fmt.Errorf("-modes: unknown mode %q (want grouped, single)", name)
		}
	}

	dir, err := os.MkdirTemp("", "falco-phantom-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.forwarder
	if bin == "" {
		fmt.Fprintln(out, "building the forwarder...")
		bin = filepath.Join(dir, "falco-phantom-forwarder")
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/falco-phantom-forwarder")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build the forwarder (run from the module root): %w", err)
		}
	}
	fmt.Fprintf(out, "machine: %s\n", machine())
	fmt.Fprintf(out, "command: go run ./bench %s\n", strings.Join(args, " "))
	fmt.Fprintf(out, "forwarder: BATCH_SIZE=%d WORKERS=%d; %d alerts per throughput run (%d with grouping off), %d/s for %s in the latency run\n\n",
		o.batch, o.workers, o.events, o.singleEvents, o.rate, o.duration)

	var results []result
	for _, m := range modes {
		r, err := runMode(ctx, o, m, bin, dir, out)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		results = append(results, r)
	}
	fmt.Fprintf(out, "\nload average at the end: %s\n\n", loadAverage())
	printResults(out, results)
	return nil
}

// runMode measures one grouping mode: the limits, then the forwarder's
// throughput, then its latency.
func runMode(ctx context.Context, o options, m mode, bin, dir string, log io.Writer) (result, error) {
	r := result{mode: m}
	w := newWorkload(m.events, m.perIncident, time.Now().UTC().Add(-time.Minute))

	fmt.Fprintf(log, "[%s] limit: JetStream to a consumer that only acknowledges...\n", m.name)
	var err error
	if r.natsLimit, err = natsLimit(ctx, filepath.Join(dir, m.name+"-nats-limit"), w, o.batch); err != nil {
		return r, fmt.Errorf("NATS limit: %w", err)
	}
	r.natsLimitN = len(w.events)
	fmt.Fprintf(log, "[%s] limit: mock SOAR storing the forwarder's requests...\n", m.name)
	if r.mockLimit, r.mockLimitReqs, err = mockLimit(ctx, filepath.Join(dir, m.name+"-mock-limit"), w, o.batch, o.workers); err != nil {
		return r, fmt.Errorf("mock SOAR limit: %w", err)
	}
	r.mockLimitN = len(w.events)

	fmt.Fprintf(log, "[%s] throughput: forwarder draining %d alerts...\n", m.name, len(w.events))
	if err := throughput(ctx, o, m, bin, filepath.Join(dir, m.name+"-throughput"), w, &r); err != nil {
		return r, fmt.Errorf("throughput: %w", err)
	}
	fmt.Fprintf(log, "[%s] latency: %d alerts/s for %s...\n", m.name, o.rate, o.duration)
	if err := latency(ctx, o, m, bin, filepath.Join(dir, m.name+"-latency"), &r); err != nil {
		return r, fmt.Errorf("latency: %w", err)
	}
	return r, nil
}

// workload is a set of alerts ready to publish.
type workload struct {
	events  []*falco.Event
	bodies  [][]byte
	bytes   int
	perCase int
}

// newWorkload makes n shell alerts: with perIncident > 1, activeIncidents
// containers at a time raise perIncident alerts each, interleaved; with 1,
// every alert comes from a container of its own. Every alert is unique.
func newWorkload(n, perIncident int, start time.Time) *workload {
	w := &workload{perCase: perIncident}
	for i := range n {
		w.add(shellAlert(i, incidentOf(i, perIncident), start.Add(time.Duration(i)*100*time.Microsecond)))
	}
	return w
}

func (w *workload) add(ev *falco.Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // a ShellEvent always marshals
	}
	w.events, w.bodies, w.bytes = append(w.events, ev), append(w.bodies, b), w.bytes+len(b)
}

// incidentOf is the incident of the i-th alert.
func incidentOf(i, perIncident int) int {
	if perIncident <= 1 {
		return i
	}
	block := perIncident * activeIncidents
	return (i/block)*activeIncidents + i%activeIncidents
}

// shellAlert is the i-th alert, raised in the container of incident inc.
func shellAlert(i, inc int, at time.Time) *falco.Event {
	apps := []string{"web", "api", "cart", "search", "auth", "billing", "queue"}
	app := apps[inc%len(apps)]
	return falco.ShellEvent(falco.ShellSpec{
		Time: at, Hostname: fmt.Sprintf("node-%d", inc%5), ContainerID: fmt.Sprintf("%012x", 0xc0000000+inc),
		ContainerName: app, Image: "registry.example.com/shop/" + app, ImageTag: "1." + strconv.Itoa(inc%30),
		Namespace: "shop", Pod: fmt.Sprintf("%s-7d9f8c6b5-%05d", app, inc),
		CommandLine: fmt.Sprintf("sh -c echo bench-%d; cat /etc/hostname", i),
	})
}

// startNATS starts an embedded NATS server with JetStream storing in dir.
func startNATS(dir string) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("NATS server not ready after 10s")
	}
	return srv, nil
}

// createStream creates a stream the way the forwarder does.
func createStream(ctx context.Context, js jetstream.JetStream, name string, subjects []string) (jetstream.Stream, error) {
	d := forwarder.Defaults().NATS
	return js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: subjects, Storage: jetstream.FileStorage, Replicas: 1,
		MaxAge: d.StreamMaxAge, Discard: jetstream.DiscardOld,
	})
}

// preload stores every alert of w in the stream, on subject(ev), a
// thousand at a time, waiting for the stream to confirm each thousand.
func preload(ctx context.Context, js jetstream.JetStream, w *workload, subject func(*falco.Event) string) error {
	for from := 0; from < len(w.events); from += 1000 {
		for i := from; i < min(from+1000, len(w.events)); i++ {
			if _, err := js.PublishAsync(subject(w.events[i]), w.bodies[i]); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(waitLimit):
			return errors.New("the stream did not confirm the alerts")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// natsLimit is the rate at which JetStream hands the alerts to a durable
// pull consumer configured like the forwarder's that only acknowledges.
func natsLimit(ctx context.Context, dir string, w *workload, batch int) (float64, error) {
	srv, err := startNATS(dir)
	if err != nil {
		return 0, err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	if _, err := createStream(ctx, js, "FALCO", []string{"falco.>"}); err != nil {
		return 0, err
	}
	if err := preload(ctx, js, w, (*falco.Event).Subject); err != nil {
		return 0, err
	}
	d := forwarder.Defaults().NATS
	cons, err := js.CreateOrUpdateConsumer(ctx, "FALCO", jetstream.ConsumerConfig{
		Durable: "only-acks", FilterSubject: d.Subject, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: d.AckWait, MaxDeliver: -1, MaxAckPending: d.MaxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(batch*2, 16<<20))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	start := time.Now()
	for range w.events {
		msg, err := it.Next(jetstream.NextMaxWait(30 * time.Second))
		if err != nil {
			return 0, fmt.Errorf("consume: %w", err)
		}
		if err := msg.Ack(); err != nil {
			return 0, fmt.Errorf("ack: %w", err)
		}
	}
	return float64(len(w.events)) / time.Since(start).Seconds(), nil
}

// startMock starts the mock SOAR storing in dir; wrap, when not nil, wraps
// its handler.
func startMock(ctx context.Context, dir string, wrap func(http.Handler) http.Handler) (*mockphantom.Server, string, func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", nil, err
	}
	s, err := mockphantom.New(ctx, mockphantom.Config{DBPath: filepath.Join(dir, "soar.db"), User: soarUser, Password: soarPassword})
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = s.Close()
		return nil, "", nil, err
	}
	h := s.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
		_ = s.Close()
	}
	return s, "http://" + ln.Addr().String(), stop, nil
}

// request is one write request as the forwarder would send it.
type request struct {
	path string
	body []byte
	n    int // artifacts in it
}

// forwarderRequests splits w into the requests a forwarder with the given
// batch size sends when every batch is full: per batch, one request per
// case, the first of a case creating it with its artifacts inline. idxs[k]
// lists the alerts of request k.
func forwarderRequests(w *workload, batch int) (reqs []request, idxs [][]int) {
	type pending struct {
		inc  int
		idxs []int
	}
	created := map[int]bool{}
	for from := 0; from < len(w.events); from += batch {
		var order []*pending
		byInc := map[int]*pending{}
		for i := from; i < min(from+batch, len(w.events)); i++ {
			inc := incidentOf(i, w.perCase)
			p := byInc[inc]
			if p == nil {
				p = &pending{inc: inc}
				byInc[inc] = p
				order = append(order, p)
			}
			p.idxs = append(p.idxs, i)
		}
		for _, p := range order {
			path := "/rest/artifact"
			if !created[p.inc] {
				created[p.inc] = true
				path = "/rest/container" // with the artifacts inline
			}
			reqs = append(reqs, request{path: path, n: len(p.idxs)})
			idxs = append(idxs, p.idxs)
		}
	}
	return reqs, idxs
}

// mockLimit is the rate at which the mock SOAR stores the requests a
// forwarder sends for w, encoded beforehand and sent by `workers` clients.
// Requests that add to a case wait for the request that created it.
func mockLimit(ctx context.Context, dir string, w *workload, batch, workers int) (float64, int, error) {
	s, url, stop, err := startMock(ctx, dir, nil)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	reqs, idxs := forwarderRequests(w, batch)
	arts := make([]phantom.Artifact, len(w.events))
	for i, ev := range w.events {
		arts[i] = forwarder.Artifact(ev, w.bodies[i])
	}
	// Cases are created in request order; the case of each incident is
	// known once its create request is answered.
	caseOf := make([]chan int64, len(reqs))
	incOf := make([]int, len(reqs))
	firstOf := map[int]int{}
	for k := range reqs {
		incOf[k] = incidentOf(idxs[k][0], w.perCase)
		if _, ok := firstOf[incOf[k]]; !ok {
			firstOf[incOf[k]] = k
			caseOf[k] = make(chan int64, 1)
		}
	}
	bodies := make([][]byte, len(reqs))
	for k, r := range reqs {
		if r.path == "/rest/container" {
			ev := w.events[idxs[k][0]]
			ct := forwarder.Container(ev, w.bodies[idxs[k][0]], "events", fmt.Sprintf("falco-case-bench-%d", incOf[k]))
			for _, i := range idxs[k] {
				ct.Artifacts = append(ct.Artifacts, arts[i])
			}
			if bodies[k], err = json.Marshal(ct); err != nil {
				return 0, 0, err
			}
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(reqs) {
					return
				}
				body := bodies[k]
				if reqs[k].path == "/rest/artifact" {
					id := <-caseOf[firstOf[incOf[k]]]
					caseOf[firstOf[incOf[k]]] <- id
					list := make([]phantom.Artifact, 0, len(idxs[k]))
					for _, i := range idxs[k] {
						a := arts[i]
						a.ContainerID = id
						list = append(list, a)
					}
					body, _ = json.Marshal(list) // the only encoding in the timed part
				}
				id, err := post(ctx, client, url+reqs[k].path, body)
				if reqs[k].path == "/rest/container" {
					caseOf[k] <- id // 0 on failure: what waits for it fails too
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, 0, firstErr
	}
	if got := s.Stats().ArtifactsCreated; got != int64(len(w.events)) {
		return 0, 0, fmt.Errorf("the mock stored %d artifacts, want %d", got, len(w.events))
	}
	return float64(len(w.events)) / elapsed.Seconds(), len(reqs), nil
}

// post sends one write and returns the id of a created container.
func post(ctx context.Context, c *http.Client, url string, body []byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(soarUser, soarPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || bytes.Contains(answer, []byte(`"failed":true`)) {
		return 0, fmt.Errorf("POST %s: %d %.200s", url, resp.StatusCode, answer)
	}
	var created struct{ ID int64 }
	_ = json.Unmarshal(answer, &created)
	return created.ID, nil
}

// fwProcess is a forwarder child process.
type fwProcess struct {
	cmd     *exec.Cmd
	logs    *bytes.Buffer
	mu      sync.Mutex
	metrics string
}

func startForwarder(ctx context.Context, bin, natsURL, soarURL string, o options, m mode) (*fwProcess, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	listen := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{
		"PHANTOM_BASE_URL=" + soarURL, "PHANTOM_USER=" + soarUser, "PHANTOM_PASSWORD=" + soarPassword,
		"NATS_URL=" + natsURL, "GROUP_WINDOW=" + m.window.String(), "BATCH_SIZE=" + strconv.Itoa(o.batch),
		"WORKERS=" + strconv.Itoa(o.workers), "LISTEN_ADDR=" + listen, "LOG_LEVEL=warn",
	}
	// Go runtime settings pass through, for tuning runs.
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	p := &fwProcess{cmd: cmd, logs: &bytes.Buffer{}, metrics: "http://" + listen + "/metrics"}
	cmd.Stdout, cmd.Stderr = p, p
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the forwarder: %w", err)
	}
	if err := waitUntil(ctx, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		p.stop()
		return nil, fmt.Errorf("forwarder not ready: %w\n%s", err, p.logText())
	}
	return p, nil
}

func (p *fwProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.Write(b)
}

func (p *fwProcess) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// usage returns the forwarder's peak RSS and CPU time so far.
func (p *fwProcess) usage() (rss int64, cpu time.Duration, err error) {
	pid := p.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			rss = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return rss, 0, err
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return rss, time.Duration(utime+stime) * time.Second / ticks, nil
}

// stop ends the forwarder with SIGTERM, as Kubernetes does.
func (p *fwProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// throughput preloads the stream, starts the forwarder and measures the
// rate at which SOAR receives the alerts, between 10% and 90% of them.
func throughput(ctx context.Context, o options, m mode, bin, dir string, w *workload, r *result) error {
	srv, err := startNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	d := forwarder.Defaults().NATS
	if _, err := createStream(ctx, js, d.Stream, d.StreamSubjects); err != nil {
		return err
	}
	if err := preload(ctx, js, w, (*falco.Event).Subject); err != nil {
		return err
	}
	soar, url, stopMock, err := startMock(ctx, filepath.Join(dir, "soar"), nil)
	if err != nil {
		return err
	}
	defer stopMock()
	var self0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	fw, err := startForwarder(ctx, bin, srv.ClientURL(), url, o, m)
	if err != nil {
		return err
	}
	defer fw.stop()
	n := int64(len(w.events))
	var t10, t90 time.Time
	var n10, n90 int64
	if err := waitUntil(ctx, waitLimit, func() bool {
		got := soar.Stats().ArtifactsCreated
		if t10.IsZero() && got >= n/10 {
			t10, n10 = time.Now(), got
		}
		if t90.IsZero() && got >= n*9/10 {
			t90, n90 = time.Now(), got
		}
		return got >= n
	}); err != nil {
		return fmt.Errorf("SOAR holds %d of %d alerts: %w\n%s", soar.Stats().ArtifactsCreated, n, err, fw.logText())
	}
	var self1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	st := soar.Stats()
	r.delivered = int(st.ArtifactsCreated)
	r.throughput = float64(n90-n10) / t90.Sub(t10).Seconds()
	r.writeRequests = st.ByRoute["POST /rest/container"] + st.ByRoute["POST /rest/artifact"]
	r.allRequests = st.Requests
	rss, cpu, err := fw.usage()
	if err != nil {
		return err
	}
	r.peakRSS, r.forwarderCPU = max(r.peakRSS, rss), cpu
	harness := rusageTime(self1) - rusageTime(self0)
	r.fwCPUShare = cpu.Seconds() / (cpu + harness).Seconds()
	r.harnessCPUShare = 1 - r.fwCPUShare
	if st.Duplicates != 0 {
		return fmt.Errorf("SOAR refused %d duplicates in a run without faults", st.Duplicates)
	}
	return nil
}

// latency runs the forwarder live and publishes alerts as falcosidekick
// does at o.rate per second, each with the time it was published; the mock
// SOAR records when each was stored.
func latency(ctx context.Context, o options, m mode, bin, dir string, r *result) error {
	srv, err := startNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	rec := newRecorder()
	soar, url, stopMock, err := startMock(ctx, filepath.Join(dir, "soar"), rec.wrap)
	if err != nil {
		return err
	}
	defer stopMock()
	fw, err := startForwarder(ctx, bin, srv.ClientURL(), url, o, m)
	if err != nil {
		return err
	}
	defer fw.stop()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()

	total := int(o.duration.Seconds() * float64(o.rate))
	published := make(map[string]time.Time, total)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < total; {
		<-tick.C
		due := min(total, int(time.Since(start).Seconds()*float64(o.rate)))
		for ; i < due; i++ {
			now := time.Now()
			ev := shellAlert(i, incidentOf(i, m.perIncident), now.UTC())
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			published[ev.ID()] = now
			if err := nc.Publish(ev.Subject(), b); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
		}
	}
	if err := waitUntil(ctx, waitLimit, func() bool { return rec.count() >= total }); err != nil {
		return fmt.Errorf("SOAR holds %d of %d alerts: %w\n%s", soar.Stats().ArtifactsCreated, total, err, fw.logText())
	}
	var lat []time.Duration
	for id, at := range rec.times() {
		if p, ok := published[id]; ok {
			lat = append(lat, at.Sub(p))
		}
	}
	if len(lat) != total {
		return fmt.Errorf("%d stored alerts match a published one, want %d", len(lat), total)
	}
	slices.Sort(lat)
	r.latencyEvents = len(lat)
	r.p50, r.p99, r.pmax = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	rss, _, err := fw.usage()
	if err != nil {
		return err
	}
	r.peakRSS = max(r.peakRSS, rss)
	return nil
}

// recorder notes, in front of the mock SOAR, when each alert's artifact
// was first stored: when the mock answered the write that carried it.
type recorder struct {
	mu     sync.Mutex
	stored map[string]time.Time // Falco event ID -> stored
}

func newRecorder() *recorder { return &recorder{stored: map[string]time.Time{}} }

var sdiMark = []byte(`"source_data_identifier":"falco-event-`)

func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		var body bytes.Buffer
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(r.Body, &body), r.Body}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status != http.StatusOK {
			return
		}
		now := time.Now()
		b := body.Bytes()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for {
			i := bytes.Index(b, sdiMark)
			if i < 0 {
				return
			}
			b = b[i+len(sdiMark):]
			end := bytes.IndexByte(b, '"')
			if end < 0 {
				return
			}
			id := string(b[:end])
			if _, seen := rec.stored[id]; !seen {
				rec.stored[id] = now
			}
		}
	})
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.stored)
}

func (rec *recorder) times() map[string]time.Time {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make(map[string]time.Time, len(rec.stored))
	for k, v := range rec.stored {
		out[k] = v
	}
	return out
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// waitUntil polls cond every 20 ms until it holds or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func rusageTime(u syscall.Rusage) time.Duration {
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
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

// printResults prints the table of every figure.
func printResults(out io.Writer, results []result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	head := []string{"", "target"}
	for _, r := range results {
		head = append(head, r.mode.name)
	}
	row(head...)
	line := func(name, target string, f func(r result) string) {
		cells := []string{name, target}
		for _, r := range results {
			cells = append(cells, f(r))
		}
		row(cells...)
	}
	line("alerts delivered into SOAR per second", ">= 20000 (on)", func(r result) string { return fmt.Sprintf("%.0f", r.throughput) })
	line("HTTP write requests per alert", "", func(r result) string {
		return fmt.Sprintf("%.3f", float64(r.writeRequests)/float64(r.delivered))
	})
	line("HTTP requests per alert (all)", "", func(r result) string {
		return fmt.Sprintf("%.3f", float64(r.allRequests)/float64(r.delivered))
	})
	line("latency p50, publish to stored", "", func(r result) string { return ms(r.p50) })
	line("latency p99, publish to stored", "< 100 ms", func(r result) string { return ms(r.p99) })
	line("latency max, publish to stored", "", func(r result) string { return ms(r.pmax) })
	line("forwarder peak RSS", "< 64 MiB", func(r result) string { return fmt.Sprintf("%.1f MiB", float64(r.peakRSS)/(1<<20)) })
	line("forwarder CPU per 1000 alerts", "", func(r result) string {
		return ms(r.forwarderCPU * 1000 / time.Duration(max(r.delivered, 1)))
	})
	line("CPU share: forwarder / NATS+SOAR", "", func(r result) string {
		return fmt.Sprintf("%.0f%% / %.0f%%", 100*r.fwCPUShare, 100*r.harnessCPUShare)
	})
	line("limit: JetStream to a do-nothing consumer", "", func(r result) string { return fmt.Sprintf("%.0f/s", r.natsLimit) })
	line("limit: mock SOAR storing the same requests", "", func(r result) string {
		return fmt.Sprintf("%.0f/s (%d req)", r.mockLimit, r.mockLimitReqs)
	})
	line("forwarder / smaller limit", "", func(r result) string {
		return fmt.Sprintf("%.0f%%", 100*r.throughput/min(r.natsLimit, r.mockLimit))
	})
	_ = tw.Flush()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
