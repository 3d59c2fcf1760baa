// Package testkit starts the real parts of the pipeline for tests: an
// embedded NATS server with JetStream and the mock SOAR server with its
// SQLite storage, on loopback ports chosen by the kernel.
package testkit

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/syncbuf"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
)

// Credentials of the mock SOAR servers tests start.
const (
	User     = "soar-admin"
	Password = "pw-for-tests-only"
	Token    = "token-for-tests-only"
)

// NATS is an embedded NATS server that can be stopped and started again on
// the same port and storage, like a restarted pod.
type NATS struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// StartNATS starts a NATS server with JetStream in a temporary folder.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{t: t, opts: server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, MaxPayload: 16 << 20, // room for 10 MB hostile events
	}}
	n.Start()
	// Keep the same port across restarts.
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.Stop)
	return n
}

// Start starts the server (again).
func (n *NATS) Start() {
	n.t.Helper()
	opts := n.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		n.t.Fatalf("NATS server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("NATS server not ready after 10s")
	}
	n.srv = srv
}

// Stop stops the server, keeping its storage.
func (n *NATS) Stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// URL is the client URL.
func (n *NATS) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.opts.Port) }

// Phantom is a mock SOAR server on loopback.
type Phantom struct {
	*mockphantom.Server
	Running *mockphantom.Running
	URL     string
	DBPath  string

	t   testing.TB
	cfg mockphantom.Config
}

// StartPhantom starts a mock SOAR server. Empty fields of cfg get test
// defaults: a database in a temporary folder and the credentials above.
func StartPhantom(t testing.TB, cfg mockphantom.Config) *Phantom {
	t.Helper()
	if cfg.DBPath == "" {
		cfg.DBPath = filepath.Join(t.TempDir(), "soar.db")
	}
	if cfg.User == "" && !cfg.InsecureNoAuth {
		cfg.User, cfg.Password, cfg.Token = User, Password, Token
	}
	p := &Phantom{t: t, cfg: cfg, DBPath: cfg.DBPath}
	p.start("127.0.0.1:0")
	t.Cleanup(p.Stop)
	return p
}

func (p *Phantom) start(addr string) {
	p.t.Helper()
	srv, err := mockphantom.New(context.Background(), p.cfg)
	if err != nil {
		p.t.Fatalf("mock SOAR: %v", err)
	}
	run, err := mockphantom.Serve(context.Background(), srv, addr, nil)
	if err != nil {
		_ = srv.Close()
		p.t.Fatalf("mock SOAR: %v", err)
	}
	p.Server, p.Running, p.URL = srv, run, run.URL
}

// StartPhantomTLS starts a mock SOAR server that serves HTTPS with a new
// self-signed certificate for 127.0.0.1 and accepts the token above. It
// returns its URL and a file holding the certificate, for a client to trust.
func StartPhantomTLS(t testing.TB) (url, caFile string) {
	t.Helper()
	tlsCfg, caPEM, err := mockphantom.SelfSignedTLS([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := mockphantom.New(context.Background(), mockphantom.Config{DBPath: filepath.Join(t.TempDir(), "soar.db"), Token: Token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	run, err := mockphantom.Serve(context.Background(), srv, "127.0.0.1:0", tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = run.Close() })
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return run.URL, caFile
}

// Stop stops the server as a crash would leave it: the database stays.
func (p *Phantom) Stop() {
	if p.Running != nil {
		_ = p.Running.Close()
		_ = p.Server.Close()
		p.Running = nil
	}
}

// Restart starts the server again on the same address and database.
func (p *Phantom) Restart() {
	p.t.Helper()
	addr := p.URL[len("http://"):]
	p.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		srv, err := mockphantom.New(context.Background(), p.cfg)
		if err != nil {
			p.t.Fatalf("mock SOAR: %v", err)
		}
		run, err := mockphantom.Serve(context.Background(), srv, addr, nil)
		if err == nil {
			p.Server, p.Running = srv, run
			return
		}
		_ = srv.Close()
		if time.Now().After(deadline) {
			p.t.Fatalf("mock SOAR restart on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RestartEmpty starts the server again on the same address with an empty
// database, as a SOAR without storage comes back from a restart (or one
// restored from an older backup): the ids it hands out start again at 1.
func (p *Phantom) RestartEmpty() {
	p.t.Helper()
	p.Stop()
	files, err := filepath.Glob(p.DBPath + "*") // with SQLite's -wal and -shm files
	if err != nil {
		p.t.Fatal(err)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			p.t.Fatal(err)
		}
	}
	p.Restart()
}

// WaitFor calls check until it returns nil or timeout passes, then fails
// the test with check's last error.
func WaitFor(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %s: %v", timeout, err)
		}
		time.Sleep(delay)
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// Buffer is a bytes.Buffer safe for one writer and concurrent readers,
// for reading logs while they are written.
type Buffer = syncbuf.Buffer
