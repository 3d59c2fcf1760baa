package forwarder_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// badEvent is a message that is not a valid Falco event, and the reason
// the forwarder must give when it dead-letters it.
type badEvent struct {
	body   []byte
	reason string
}

// badEvents generates n malformed messages of many kinds: not JSON,
// truncated, wrong types, missing or invalid fields, nested beyond any
// parser's depth, other JSON values, invalid UTF-8, and just over the size
// limit. They are deterministic for a seed.
func badEvents(seed uint64, n int) []badEvent {
	rng := rand.New(rand.NewPCG(seed, 1))
	valid, _ := json.Marshal(shell("0123456789ab", "template", time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)))
	const when = `"time":"2026-11-27T01:36:43.854923360Z"`
	kinds := []func(i int) badEvent{
		func(i int) badEvent {
			return badEvent{[]byte(fmt.Sprintf("plain text %d <script>alert(1)</script>", i)), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent {
			return badEvent{valid[:1+rng.IntN(len(valid)-2)], forwarder.ReasonInvalidEvent} // every strict prefix is broken
		},
		func(int) badEvent {
			return badEvent{[]byte(`{"rule":42,"priority":"Notice",` + when + `}`), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent {
			return badEvent{[]byte(`{"rule":"r","priority":"Notice","time":1795743403}`), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent {
			return badEvent{[]byte(`{"rule":"r","priority":"Notice",` + when + `,"output_fields":"proc.cmdline=sh"}`), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent {
			return badEvent{[]byte(`{"rule":"r","priority":"Notice",` + when + `,"tags":{"a":1}}`), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent {
			return badEvent{[]byte(`{"rule":"r","priority":["Notice"],` + when + `}`), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent {
			return badEvent{[]byte(`{"rule":"r","priority":"Catastrophic",` + when + `}`), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent {
			return badEvent{[]byte(`{"priority":"Notice",` + when + `}`), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent {
			return badEvent{[]byte(`{"rule":"r","priority":"Notice","time":"yesterday"}`), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent {
			return badEvent{[]byte(`{"rule":"   ","priority":"Notice",` + when + `}`), forwarder.ReasonInvalidEvent}
		},
		func(i int) badEvent {
			return badEvent{[]byte([]string{`[1,2,3]`, `42`, `"a string"`, `null`, `true`}[i%5]), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent { return badEvent{[]byte(" \n\t "), forwarder.ReasonInvalidEvent} },
		func(int) badEvent {
			return badEvent{[]byte("\xff\xfe\x00{\"rule\":\"r\"}"), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent {
			depth := 10_001 + rng.IntN(20_000) // beyond encoding/json's limit of 10,000
			body := `{"rule":"r","priority":"Notice",` + when + `,"output_fields":{"x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}`
			return badEvent{[]byte(body), forwarder.ReasonInvalidEvent}
		},
		func(int) badEvent {
			body := `{"rule":"r","priority":"Notice",` + when + `,"output":"` + strings.Repeat("x", falco.MaxEventBytes) + `"}`
			return badEvent{[]byte(body), forwarder.ReasonTooLarge}
		},
	}
	out := make([]badEvent, n)
	for i := range out {
		kind := i % (len(kinds) - 1)
		if i%997 == 996 {
			kind = len(kinds) - 1 // a few just over the limit
		}
		out[i] = kinds[kind](i)
	}
	return out
}

// TestMalformedFlood sends 10,000 malformed messages, among them a burst of
// 10 MB ones, with valid alerts between them, to the real forwarder command
// in a process of its own: it must not crash, its memory must stay bounded,
// every bad message must be dead-lettered with its reason and counted, and
// every valid alert delivered once.
func TestMalformedFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 10,000 malformed events and 240 MB of oversized ones (about 20 s); skipped with -short")
	}
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	port := freePort(t)
	fw := startChild(t, childCommand, []string{
		"PHANTOM_BASE_URL=" + soar.URL, "PHANTOM_USER=" + testkit.User, "PHANTOM_PASSWORD=" + testkit.Password,
		"NATS_URL=" + n.URL(), "GROUP_WINDOW=1m", "LISTEN_ADDR=127.0.0.1:" + strconv.Itoa(port), "LOG_LEVEL=error",
	})
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	nc := connect(t, n.URL())
	waitConsumer(t, nc, 20*time.Second)
	idle, err := fw.peakRSS()
	if err != nil {
		t.Fatal(err)
	}
	heap := sampleHeap(t, metricsURL)

	const numBad, every, numHuge = 10_000, 50, 24
	bad := badEvents(42, numBad)
	huge := []byte(`{"rule":"r","priority":"Notice","time":"2026-11-27T01:36:43Z","output":"` + strings.Repeat("A", 10<<20) + `"}`)
	good := newStream("flood", 10, numBad/every/10, time.Now().UTC(), 100*time.Millisecond)
	var publishedBytes int
	begin := time.Now()
	for i, b := range bad {
		if i%every == 0 {
			good.publishAll(t, nc, i/every, i/every+1)
		}
		if err := nc.Publish(fmt.Sprintf("falco.notice.bad_%d", i), b.body); err != nil {
			t.Fatal(err)
		}
		publishedBytes += len(b.body)
		if i == numBad/2 { // a burst of huge ones in the middle
			// Acknowledged publishes: the server drops core publishes its
			// stream's ingest queue (128 MiB by default) has no room for,
			// and 240 MB at once overflows it on a busy machine. Losing
			// events before the stream is falcosidekick's risk, not the
			// forwarder's (docs/reliability.md).
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			for j := range numHuge {
				if _, err := js.Publish(context.Background(), fmt.Sprintf("falco.notice.huge_%d", j), huge); err != nil {
					t.Fatal(err)
				}
				publishedBytes += len(huge)
			}
		}
		if i%1000 == 0 {
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	checkDelivered(t, soarClient(t, soar.URL), good, 60*time.Second)
	waitIdle(t, nc, 60*time.Second)
	wantReasons := map[string]float64{forwarder.ReasonTooLarge: numHuge}
	for _, b := range bad {
		wantReasons[b.reason]++
	}
	metrics := scrape(t, metricsURL)
	for reason, want := range wantReasons {
		key := fmt.Sprintf("%s{reason=%q}", forwarder.MetricDeadLettered, reason)
		if got := metrics[key]; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	if got, want := metrics[forwarder.MetricReceived], float64(numBad+numHuge+len(good.events)); got != want {
		t.Errorf("%s = %v, want %v", forwarder.MetricReceived, got, want)
	}
	checkDeadLetters(t, nc, bad, numHuge)

	// Holding the burst of huge events at once would take 240 MB.
	const bound = 128 << 20
	heapPeak := heap()
	peak, err := fw.peakRSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d MiB of events in %s: forwarder heap peak %d MiB; RSS %d MiB at idle, peak %d MiB (race detector: %v)",
		publishedBytes>>20, time.Since(begin).Round(time.Millisecond), heapPeak>>20, idle>>20, peak>>20, raceEnabled)
	if heapPeak > bound {
		t.Errorf("forwarder heap in use peaked at %d MiB; want at most %d MiB", heapPeak>>20, bound>>20)
	}
	if !raceEnabled && peak-idle > bound {
		t.Errorf("forwarder peak RSS grew by %d MiB; want at most %d MiB", (peak-idle)>>20, bound>>20)
	}
	select {
	case <-fw.done:
		t.Fatalf("the forwarder exited: %v", fw.err)
	default:
	}
}

// checkDeadLetters reads the dead-letter stream and checks that it holds
// each bad message once, with its reason, its original subject and size.
func checkDeadLetters(t *testing.T, nc *nats.Conn, bad []badEvent, numHuge int) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := js.Stream(ctx, forwarder.Defaults().NATS.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(bad) + numHuge); info.State.Msgs != want {
		t.Fatalf("dead-letter stream holds %d messages, want %d", info.State.Msgs, want)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	seen := map[string]bool{}
	for range info.State.Msgs {
		msg, err := it.Next(jetstream.NextMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read dead letter: %v", err)
		}
		h := msg.Headers()
		subject, reason := h.Get(forwarder.HeaderSubject), h.Get(forwarder.HeaderReason)
		if seen[subject] {
			t.Fatalf("%s dead-lettered twice", subject)
		}
		seen[subject] = true
		wantReason, size := forwarder.ReasonTooLarge, 10<<20+len(`{"rule":"r","priority":"Notice","time":"2026-11-27T01:36:43Z","output":""}`)
		if i, ok := strings.CutPrefix(subject, "falco.notice.bad_"); ok {
			n, _ := strconv.Atoi(i)
			wantReason, size = bad[n].reason, len(bad[n].body)
		}
		if reason != wantReason || h.Get(forwarder.HeaderError) == "" || h.Get(forwarder.HeaderSize) != strconv.Itoa(size) {
			t.Fatalf("dead letter of %s: reason %q, error %q, size %s; want reason %q, an error and size %d",
				subject, reason, h.Get(forwarder.HeaderError), h.Get(forwarder.HeaderSize), wantReason, size)
		}
		if truncated := h.Get(forwarder.HeaderTruncated) == "true"; truncated != (size > 512<<10) || (!truncated && len(msg.Data()) != size) {
			t.Fatalf("dead letter of %s: %d bytes kept of %d, truncated=%v", subject, len(msg.Data()), size, truncated)
		}
	}
}

// sampleHeap polls the forwarder's heap in use (go_memstats_heap_inuse_bytes
// on its /metrics) every 20 ms until the test ends, or until the returned
// function is called, which returns the peak seen.
func sampleHeap(t *testing.T, metricsURL string) func() int64 {
	t.Helper()
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if v, err := heapInUse(metricsURL); err == nil && v > peak.Load() {
				peak.Store(v)
			}
		}
	}()
	var once sync.Once
	finish := func() int64 {
		once.Do(func() { close(stop); <-done })
		return peak.Load()
	}
	t.Cleanup(func() { finish() })
	return finish
}

func heapInUse(metricsURL string) (int64, error) {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes in %s", metricsURL)
}

// scrape reads a Prometheus text page into "name{labels}" -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHostileStringsReachSOARIntactButBounded sends alerts whose values an
// attacker controls (markup, control and bidirectional characters, very
// long values): SOAR must receive them unchanged up to the bounds, and the
// mock SOAR's pages must show them escaped.
func TestHostileStringsReachSOARIntactButBounded(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	startForwarder(t, baseConfig(n.URL(), soar.URL))
	nc := connect(t, n.URL())

	hostile := map[string]string{
		"script":  `sh -c "<script>alert('falco')</script>"`,
		"img":     `"><img src=x onerror=alert(1)>`,
		"sql":     `'; DROP TABLE artifacts; --`,
		"control": "printf '\x1b[31mred\x1b[0m'\r\n\t\x00\x07 done",
		"bidi":    "ls \u202Etxt.exe\u202C # \u200b",
		"long":    "sh -c '" + strings.Repeat("<b>A</b>", 12_500) + "'", // 100 kB
		"huge":    "sh -c '" + strings.Repeat("B", 300_000) + "'",       // raw event over 256 KiB
	}
	events := map[string]*falco.Event{}
	rawSize := map[string]int{}
	now := time.Now().UTC()
	i := 0
	for name, cmd := range hostile {
		// One container: the alerts share a case, shown on one page.
		ev := shell("ffff00000000", name, now.Add(time.Duration(i)*time.Millisecond))
		ev.OutputFields["proc.cmdline"] = cmd
		ev.OutputFields["container.name"] = "<i>" + name + "</i>"
		ev.Output = "Notice A shell was spawned command=" + cmd
		events[name] = ev
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		rawSize[name] = len(raw)
		publish(t, nc, ev)
		i++
	}

	c := soarClient(t, soar.URL)
	byID := map[string]phantom.Artifact{}
	testkit.WaitFor(t, 20*time.Second, func() error {
		page, err := c.Artifacts(context.Background(), phantom.Query{PageSize: 0})
		if err != nil {
			return err
		}
		for _, a := range page.Data {
			id, _ := a.CEF["falcoEventId"].(string)
			byID[id] = a
		}
		if len(byID) != len(events) {
			return fmt.Errorf("SOAR holds %d artifacts, want %d", len(byID), len(events))
		}
		return nil
	})
	const maxCEF = 8 << 10
	for name, ev := range events {
		a, ok := byID[ev.ID()]
		if !ok {
			t.Fatalf("alert %s not in SOAR", name)
		}
		cmd, want := a.CEF["commandLine"].(string), hostile[name]
		if len(want) <= maxCEF {
			if cmd != want {
				t.Errorf("%s: commandLine = %q, want %q unchanged", name, cmd, want)
			}
		} else if !strings.HasPrefix(cmd, want[:maxCEF-8]) || len(cmd) > maxCEF+64 || !strings.HasSuffix(cmd, "bytes cut]") {
			t.Errorf("%s: commandLine of %d bytes kept as %d bytes ending %q; want the first %d bytes and a cut marker",
				name, len(want), len(cmd), cmd[max(0, len(cmd)-30):], maxCEF)
		}
		if got := a.CEF["containerName"]; got != "<i>"+name+"</i>" {
			t.Errorf("%s: containerName = %q", name, got)
		}
		var data struct {
			OutputFields map[string]any `json:"output_fields"`
			Truncated    bool           `json:"truncated"`
		}
		if err := json.Unmarshal(a.Data, &data); err != nil {
			t.Fatalf("%s: artifact data: %v", name, err)
		}
		const maxRaw = 256 << 10
		if rawSize[name] > maxRaw {
			if !data.Truncated || len(a.Data) > 32<<10 {
				t.Errorf("%s: data of %d bytes, truncated=%v; want a short note instead of the %d-byte event", name, len(a.Data), data.Truncated, rawSize[name])
			}
		} else if data.OutputFields["proc.cmdline"] != want {
			t.Errorf("%s: raw event of %d bytes in data changed", name, rawSize[name])
		}
	}
	assertPagesEscape(t, soar.URL, byID[events["script"].ID()].Container)
}

// assertPagesEscape fetches the mock SOAR's index page and a case page and
// checks that no hostile markup or invisible character gets through.
func assertPagesEscape(t *testing.T, base string, caseID int64) {
	t.Helper()
	for _, path := range []string{"/", fmt.Sprintf("/container/%d", caseID)} {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(testkit.User, testkit.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		page := string(b)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		for _, raw := range []string{"<script>", "<img", "<i>", "<b>A</b>", "\x1b", "\x00", "\x07", "\u202e", "\u200b"} {
			if strings.Contains(page, raw) {
				t.Errorf("GET %s shows %q unescaped", path, raw)
			}
		}
		if !strings.Contains(page, "&lt;script&gt;") || !strings.Contains(page, `\x1b`) || !strings.Contains(page, `\u202e`) {
			t.Errorf("GET %s does not show the hostile values escaped (want &lt;script&gt;, \\x1b, \\u202e)", path)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q, want scripts off", path, csp)
		}
	}
}

// An alert with bytes that are not UTF-8 (a command line of raw bytes)
// reaches SOAR as valid UTF-8 JSON, with U+FFFD in their place, in the
// artifact's fields and in the raw event it keeps; SOAR's listing stays
// valid JSON text.
func TestInvalidUTF8ReachesSOARAsValidJSON(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	startForwarder(t, baseConfig(n.URL(), soar.URL))
	nc := connect(t, n.URL())
	raw := `{"rule":"Terminal shell in container","priority":"Notice","time":"` + time.Now().UTC().Format(time.RFC3339Nano) +
		`","output":"sh -c ` + "\xff\xfe" + `","output_fields":{"container.id":"0bad0bad0bad","proc.cmdline":"sh -c echo ` + "\xc3\x28" + ` utf8"}}`
	if err := nc.Publish("falco.notice.terminal_shell_in_container", []byte(raw)); err != nil {
		t.Fatal(err)
	}
	c := soarClient(t, soar.URL)
	arts := waitStored(t, c, []string{"utf8"}, 20*time.Second)
	if cmd := arts["utf8"].CEF["commandLine"]; cmd != "sh -c echo \uFFFD( utf8" {
		t.Errorf("commandLine = %q, want U+FFFD in place of the invalid byte", cmd)
	}
	for _, path := range []string{"/rest/artifact?page_size=0", "/rest/container?page_size=0"} {
		req, err := http.NewRequest(http.MethodGet, soar.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(testkit.User, testkit.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(body) || !strings.Contains(string(body), "sh -c \uFFFD") {
			t.Errorf("GET %s is not valid UTF-8 JSON with U+FFFD in the raw event: %q", path, tail(string(body), 300))
		}
	}
}
