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
}

// Run runs the demo. With Serve it returns when ctx ends (the Result is
// then handed to onReady as soon as the first case is stored).
func Run(ctx context.Context, o Options, onReady func(*Result)) (*Result, error) {
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	step := func(format string, args ...any) { fmt.Fprintf(progress, "• "+format+"\n", args...) }
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.SOARListen == "" {
		o.SOARListen = "127.0.0.1:0"
	}
	dir := o.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "falco-phantom-demo-")
		if err != nil {
			return nil, fmt.Errorf("create data folder: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}

	res := &Result{PasswordFile: filepath.Join(dir, "soar-password")}
	password, err := secret(res.PasswordFile)
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "demo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer logFile.Close()
	log := slog.New(slog.NewJSONHandler(logFile, nil))

	step("starting NATS with JetStream (embedded)")
	ns, err := startNATS(filepath.Join(dir, "nats"), o.NATSPort)
	if err != nil {
		return nil, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	res.NATSURL = ns.ClientURL()
	step("NATS ready at %s", res.NATSURL)

	step("starting mock SOAR (data in %s)", dir)
	soar, err := mockphantom.New(ctx, mockphantom.Config{
		DBPath: filepath.Join(dir, "soar.db"), User: User, Password: password, Logger: log.With("component", "mockphantom"),
	})
	if err != nil {
		return nil, fmt.Errorf("mock SOAR: %w", err)
	}
	defer soar.Close()
	run, err := mockphantom.Serve(ctx, soar, o.SOARListen, nil)
	if err != nil {
		return nil, fmt.Errorf("mock SOAR: %w", err)
	}
	defer run.Close()
	res.SOARURL = run.URL
	step("mock SOAR ready at %s", res.SOARURL)

	cfg := forwarder.Defaults()
	cfg.Phantom.BaseURL = run.URL
	cfg.Phantom.Auth = phantom.Auth{User: User, Password: password}
	cfg.NATS.URL = res.NATSURL
	cfg.Listen = ""
	fw, err := forwarder.New(cfg, log.With("component", "forwarder"))
	if err != nil {
		return nil, fmt.Errorf("forwarder: %w", err)
	}
	fwCtx, stopFw := context.WithCancel(ctx)
	fwDone := make(chan error, 1)
	go func() { fwDone <- fw.Run(fwCtx) }()
	defer func() { stopFw(); <-fwDone }()
	step("starting the forwarder (JetStream stream FALCO, durable consumer %s)", cfg.NATS.Consumer)
	if err := waitUntil(ctx, 15*time.Second, fw.Ready); err != nil {
		return nil, fmt.Errorf("forwarder did not get ready: %w (log: %s)", err, logFile.Name())
	}

	nc, err := nats.Connect(res.NATSURL, nats.Name("falco-phantom-demo"))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close()
	ev := Event("")
	res.Subject, res.EventTime = ev.Subject(), ev.Time
	step("publishing %q on %s, as falcosidekick does", ev.Rule, res.Subject)
	res.Published = time.Now()
	if err := Publish(nc, ev); err != nil {
		return nil, err
	}

	client, err := phantom.New(phantom.Config{BaseURL: run.URL, Credentials: phantom.StaticCredentials{User: User, Password: password}})
	if err != nil {
		return nil, err
	}
	step("waiting for the case in SOAR (up to %s)", o.Timeout)
	sdi := "falco-event-" + ev.ID()
	err = waitUntil(ctx, o.Timeout, func() error {
		page, err := client.Artifacts(ctx, phantom.Query{PageSize: 1, Filters: map[string]any{"source_data_identifier": sdi}})
		if err != nil {
			return err
		}
		if page.Count == 0 {
			if ferr := fw.Ready(); ferr != nil {
				return fmt.Errorf("not in SOAR yet; forwarder: %w", ferr)
			}
			return errors.New("not in SOAR yet")
		}
		res.Stored = time.Now()
		res.ArtifactID, res.CaseID = page.Data[0].ID, page.Data[0].Container
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the event did not reach SOAR within %s: %w (log: %s)", o.Timeout, err, logFile.Name())
	}
	res.Latency = res.Stored.Sub(res.Published)
	if onReady != nil {
		onReady(res)
	}
	if o.Serve {
		<-ctx.Done()
	}
	return res, nil
}

// Event is a realistic "Terminal shell in container" alert for the demo;
// marker, when set, is put into the command line.
func Event(marker string) *falco.Event {
	cmd := "bash"
	if marker != "" {
		cmd = "sh -c echo " + marker
	}
	return falco.ShellEvent(falco.ShellSpec{
		Hostname: "demo-node", ContainerID: "5d1f0ab2c3e4", ContainerName: "nginx", Image: "docker.io/library/nginx",
		ImageTag: "1.27", Namespace: "shop", Pod: "web-7c9f8d5b6-x2kqz", CommandLine: cmd,
	})
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

func waitUntil(ctx context.Context, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}
