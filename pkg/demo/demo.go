// Package demo runs the whole pipeline on one machine, with no cluster: an
// embedded NATS server with JetStream, the mock SOAR server and the
// forwarder, then publishes a "Terminal shell in container" alert exactly as
// falcosidekick would and waits for it to become a case.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/poll"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// User is the mock SOAR user of the demo; its password is generated and
// written to a file in the data folder, never printed.
const User = "demo"

// Options configure a demo run.
type Options struct {
	// DataDir holds the NATS store, the SOAR database, the password and
	// the log. Empty: a temporary folder, removed at the end.
	DataDir string
	// SOARListen is the mock SOAR's address; default 127.0.0.1:0.
	SOARListen string
	// NATSPort is the NATS port; 0 picks a free one.
	NATSPort int
	// Timeout bounds the wait for the case.
	Timeout time.Duration
	// Serve keeps everything running after the first case, until ctx ends.
	Serve bool
	// Scenario, when set, is published after the first case (see Scenario).
	Scenario string
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// Result is what a demo run measured.
type Result struct {
	NATSURL      string        `json:"natsURL"`
	SOARURL      string        `json:"soarURL"`
	PasswordFile string        `json:"passwordFile"`
	Subject      string        `json:"subject"`
	EventTime    time.Time     `json:"eventTime"`
	Published    time.Time     `json:"published"`
	Stored       time.Time     `json:"stored"`
	CaseID       int64         `json:"caseID"`
	ArtifactID   int64         `json:"artifactID"`
	Latency      time.Duration `json:"latencyNanoseconds"`
	// Scenario and ScenarioAlerts say what was published after the case.
	Scenario       string `json:"scenario,omitempty"`
	ScenarioAlerts int    `json:"scenarioAlerts,omitempty"`
}

// Run runs the demo. With Serve it returns when ctx ends (the Result is
// then handed to onReady as soon as the first case is stored).
func Run(ctx context.Context, o Options, onReady func(*Result)) (*Result, error) {
	r := &run{o: o, progress: o.Progress}
	if r.progress == nil {
		r.progress = io.Discard
	}
	if r.o.Timeout <= 0 {
		r.o.Timeout = 30 * time.Second
	}
	if r.o.SOARListen == "" {
		r.o.SOARListen = "127.0.0.1:0"
	}
	defer r.stop()
	steps := []func(context.Context) error{r.prepare, r.startNATS, r.startSOAR, r.startForwarder, r.publish, r.waitForCase}
	if o.Scenario != "" {
		steps = append(steps, r.publishScenario)
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	if onReady != nil {
		onReady(r.res)
	}
	if o.Serve {
		<-ctx.Done()
	}
	return r.res, nil
}

// run is one demo run: what it started, to be stopped in reverse order.
type run struct {
	o        Options
	progress io.Writer
	res      *Result
	dir      string
	password string
	logFile  *os.File
	log      *slog.Logger
	soarURL  string
	fw       *forwarder.Forwarder
	ev       *falco.Event
	stops    []func()
}

func (r *run) step(format string, args ...any) { fmt.Fprintf(r.progress, "• "+format+"\n", args...) }

// atStop registers fn to run when the demo stops, before what was
// registered earlier.
func (r *run) atStop(fn func()) { r.stops = append(r.stops, fn) }

func (r *run) stop() {
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
}

// prepare makes the data folder, the SOAR password and the log.
func (r *run) prepare(context.Context) error {
	r.dir = r.o.DataDir
	if r.dir == "" {
		tmp, err := os.MkdirTemp("", "falco-phantom-demo-")
		if err != nil {
			return fmt.Errorf("create data folder: %w", err)
		}
		r.atStop(func() { os.RemoveAll(tmp) })
		r.dir = tmp
	} else if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("create data folder: %w", err)
	}
	r.res = &Result{PasswordFile: filepath.Join(r.dir, "soar-password")}
	var err error
	if r.password, err = secret(r.res.PasswordFile); err != nil {
		return err
	}
	if r.logFile, err = os.OpenFile(filepath.Join(r.dir, "demo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	r.atStop(func() { r.logFile.Close() })
	r.log = slog.New(slog.NewJSONHandler(r.logFile, nil))
	return nil
}

func (r *run) startNATS(context.Context) error {
	r.step("starting NATS with JetStream (embedded)")
	ns, err := startNATS(filepath.Join(r.dir, "nats"), r.o.NATSPort)
	if err != nil {
		return err
	}
	r.atStop(func() { ns.Shutdown(); ns.WaitForShutdown() })
	r.res.NATSURL = ns.ClientURL()
	r.step("NATS ready at %s", r.res.NATSURL)
	return nil
}

func (r *run) startSOAR(ctx context.Context) error {
	r.step("starting mock SOAR (data in %s)", r.dir)
	soar, err := mockphantom.New(ctx, mockphantom.Config{
		DBPath: filepath.Join(r.dir, "soar.db"), User: User, Password: r.password, Logger: r.log.With("component", "mockphantom"),
	})
	if err != nil {
		return fmt.Errorf("mock SOAR: %w", err)
	}
	r.atStop(func() { soar.Close() })
	served, err := mockphantom.Serve(ctx, soar, r.o.SOARListen, nil)
	if err != nil {
		return fmt.Errorf("mock SOAR: %w", err)
	}
	r.atStop(func() { served.Close() })
	r.soarURL, r.res.SOARURL = served.URL, served.URL
	r.step("mock SOAR ready at %s", r.res.SOARURL)
	return nil
}

func (r *run) startForwarder(ctx context.Context) error {
	cfg := forwarder.Defaults()
	cfg.Phantom.BaseURL = r.soarURL
	cfg.Phantom.Auth = phantom.Auth{User: User, Password: r.password}
	cfg.NATS.URL = r.res.NATSURL
	cfg.Listen = ""
	fw, err := forwarder.New(cfg, r.log.With("component", "forwarder"))
	if err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	fwCtx, stopFw := context.WithCancel(ctx)
	fwDone := make(chan error, 1)
	go func() { fwDone <- fw.Run(fwCtx) }()
	r.atStop(func() { stopFw(); <-fwDone })
	r.fw = fw
	r.step("starting the forwarder (JetStream stream FALCO, durable consumer %s)", cfg.NATS.Consumer)
	if err := poll.Until(ctx, 15*time.Second, 20*time.Millisecond, func(context.Context) error { return fw.Ready() }); err != nil {
		return fmt.Errorf("forwarder did not get ready: %w (log: %s)", err, r.logFile.Name())
	}
	return nil
}

func (r *run) publish(context.Context) error {
	nc, err := nats.Connect(r.res.NATSURL, nats.Name("falco-phantom-demo"))
	if err != nil {
		return forwarder.ConnectError(r.res.NATSURL, err)
	}
	defer nc.Close()
	r.ev = Event("")
	r.res.Subject, r.res.EventTime = r.ev.Subject(), r.ev.Time
	r.step("publishing %q on %s, as falcosidekick does", r.ev.Rule, r.res.Subject)
	r.res.Published = time.Now()
	return Publish(nc, r.ev)
}

// publishScenario publishes the scenario's alerts, as falcosidekick does.
func (r *run) publishScenario(context.Context) error {
	events, err := Scenario(r.o.Scenario, time.Now().UTC().Add(-30*time.Second))
	if err != nil {
		return err
	}
	nc, err := nats.Connect(r.res.NATSURL, nats.Name("falco-phantom-demo"))
	if err != nil {
		return forwarder.ConnectError(r.res.NATSURL, err)
	}
	defer nc.Close()
	for _, ev := range events {
		if err := Publish(nc, ev); err != nil {
			return err
		}
	}
	r.res.Scenario, r.res.ScenarioAlerts = r.o.Scenario, len(events)
	r.step("published the %q scenario: %d alerts of %d rules", r.o.Scenario, len(events), countRules(events))
	return nil
}

func countRules(events []*falco.Event) int {
	seen := map[string]bool{}
	for _, ev := range events {
		seen[ev.Rule] = true
	}
	return len(seen)
}

func (r *run) waitForCase(ctx context.Context) error {
	client, err := phantom.New(phantom.Config{BaseURL: r.soarURL, Credentials: phantom.StaticCredentials{User: User, Password: r.password}})
	if err != nil {
		return err
	}
	r.step("waiting for the case in SOAR (up to %s)", r.o.Timeout)
	sdi := forwarder.ArtifactID(r.ev.ID())
	err = poll.Until(ctx, r.o.Timeout, 20*time.Millisecond, func(ctx context.Context) error {
		page, err := client.Artifacts(ctx, phantom.Query{PageSize: 1, Filters: map[string]any{"source_data_identifier": sdi}})
		if err != nil {
			return err
		}
		if page.Count == 0 {
			if ferr := r.fw.Ready(); ferr != nil {
				return fmt.Errorf("not in SOAR yet; forwarder: %w", ferr)
			}
			return errors.New("not in SOAR yet")
		}
		r.res.Stored = time.Now()
		r.res.ArtifactID, r.res.CaseID = page.Data[0].ID, page.Data[0].Container
		return nil
	})
	if err != nil {
		return fmt.Errorf("the event did not reach SOAR within %s: %w (log: %s)", r.o.Timeout, err, r.logFile.Name())
	}
	r.res.Latency = r.res.Stored.Sub(r.res.Published)
	return nil
}

// Event is a realistic "Terminal shell in container" alert for the demo;
// marker, when set, is put into the command line.
func Event(marker string) *falco.Event {
	cmd := "bash"
	if marker != "" {
		cmd = "sh -c echo " + marker
	}
	return Alert(AlertSpec{Node: "demo-node", ContainerID: "5d1f0ab2c3e4", Container: "nginx", Command: cmd})
}

// Publish sends ev as falcosidekick does: a plain NATS publish of its JSON
// on falco.<priority>.<rule slug>.
func Publish(nc *nats.Conn, ev *falco.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := nc.Publish(ev.Subject(), b); err != nil {
		return fmt.Errorf("publish to %s: %w", ev.Subject(), err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("publish to %s: %w", ev.Subject(), err)
	}
	return nil
}

func startNATS(storeDir string, port int) (*server.Server, error) {
	if port == 0 {
		port = -1
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "falco-phantom-demo", Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		return nil, fmt.Errorf("NATS server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("NATS server did not start within 10s")
	}
	return ns, nil
}

// secret returns the password kept in path, creating a random one (mode
// 0600) on first use.
func secret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return string(b), nil
	}
	buf := make([]byte, 18)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(pw), 0o600); err != nil {
		return "", fmt.Errorf("write password file: %w", err)
	}
	return pw, nil
}
