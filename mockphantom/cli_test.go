package mockphantom

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunFlagErrors(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "soar.db")
	pwFile := writeFile(t, "pw", "secret\n")
	emptyFile := writeFile(t, "empty", "\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"missing --db", []string{"--token", "t"}, nil, "--db is required"},
		{"no credentials", []string{"--db", db}, nil, "--insecure-no-auth"},
		{"user alone is no credential", []string{"--db", db, "--user", "bob"}, nil, "no credentials"},
		{"password twice", []string{"--db", db, "--password", "p", "--password-file", pwFile}, nil, "only one of --password and --password-file"},
		{"token twice", []string{"--db", db, "--token", "p", "--token-file", pwFile}, nil, "only one of --token and --token-file"},
		{"missing password file", []string{"--db", db, "--password-file", filepath.Join(t.TempDir(), "nope")}, nil, "failed to read --password-file"},
		{"empty token file", []string{"--db", db, "--token-file", emptyFile}, nil, "is empty"},
		{"unknown flag", []string{"--db", db, "--bogus"}, nil, "flag provided but not defined"},
		{"arguments", []string{"--db", db, "extra"}, map[string]string{envToken: "t"}, "unexpected arguments"},
		{"bad log format", []string{"--db", db, "--log-format", "xml"}, map[string]string{envToken: "t"}, "--log-format"},
		{"bad log level", []string{"--db", db, "--log-level", "loud"}, map[string]string{envToken: "t"}, "--log-level"},
		{"cert without key", []string{"--db", db, "--tls-cert", "c.pem"}, map[string]string{envToken: "t"}, "go together"},
		{"self-signed and cert", []string{"--db", db, "--tls-self-signed", "--tls-cert", "c", "--tls-key", "k"}, map[string]string{envToken: "t"}, "exclude each other"},
		{"ca-out without self-signed", []string{"--db", db, "--tls-ca-out", "ca.pem"}, map[string]string{envToken: "t"}, "--tls-ca-out needs --tls-self-signed"},
		{"error rate above 1", []string{"--db", db, "--fault-error-rate", "2"}, map[string]string{envToken: "t"}, "--fault-error-rate"},
		{"bad duration", []string{"--db", db, "--fault-latency", "soon"}, map[string]string{envToken: "t"}, "fault-latency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr syncBuffer
			err := run(t.Context(), tt.args, cliEnv{getenv: envOf(tt.env)}, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr syncBuffer
	if err := run(t.Context(), []string{"--help"}, cliEnv{getenv: envOf(nil)}, &stdout, &stderr); err != nil {
		t.Fatalf("run --help = %v, want nil", err)
	}
	for _, want := range []string{"Usage: mockphantom", "-db file", "-insecure-no-auth", envPassword} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stdout.String())
		}
	}
}

// startRun runs the command in the background and returns once it serves.
func startRun(t *testing.T, args []string, env map[string]string) (*Running, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	ready := make(chan *Running, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, cliEnv{getenv: envOf(env), ready: func(r *Running) { ready <- r }}, &stdout, &stderr)
	}()
	select {
	case r := <-ready:
		stop := sync.OnceValue(func() error {
			cancel()
			return <-done
		})
		t.Cleanup(func() { _ = stop() })
		return r, &stderr, stop
	case err := <-done:
		cancel()
		t.Fatalf("run(%q) ended before serving: %v; stderr:\n%s", args, err, stderr.String())
		return nil, nil, nil
	}
}

func TestRunServesTLSAndShutsDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const password, token = "flag-password-123", "file-token-456"
	caFile := filepath.Join(dir, "ca.pem")
	args := []string{
		"--db", filepath.Join(dir, "soar.db"), "--listen", "127.0.0.1:0",
		"--password", password, "--token-file", writeFile(t, "token", token+"\n"),
		"--tls-self-signed", "--tls-ca-out", caFile, "--label", "events", "--label", "falco",
		"--duplicate-status", "409", "--log-format", "json",
	}
	running, stderr, stop := startRun(t, args, nil)

	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("read --tls-ca-out: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("--tls-ca-out holds no certificate")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()

	doRequest(t, client, http.MethodGet, running.URL+"/rest/version", nil, basic("admin", password)).wantStatus(t, http.StatusOK)
	doRequest(t, client, http.MethodGet, running.URL+"/rest/version", nil, tokenHeader(token)).wantStatus(t, http.StatusOK)
	c := map[string]any{"name": "c", "label": "falco", "source_data_identifier": "x"}
	doRequest(t, client, http.MethodPost, running.URL+"/rest/container", c, tokenHeader(token)).wantStatus(t, http.StatusOK)
	doRequest(t, client, http.MethodPost, running.URL+"/rest/container", c, tokenHeader(token)).wantStatus(t, http.StatusConflict)

	if err := stop(); err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
	logs := stderr.String()
	for _, want := range []string{"warning: --password is visible", `"msg":"mockphantom listening"`, running.URL} {
		if !strings.Contains(logs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{password, token} {
		if strings.Contains(logs, secret) {
			t.Errorf("stderr contains the secret %q:\n%s", secret, logs)
		}
	}
}

func TestRunEnvironmentCredentials(t *testing.T) {
	t.Parallel()
	env := map[string]string{envUser: "bob", envPassword: "env-pw", envToken: "env-tok"}
	running, stderr, _ := startRun(t, []string{"--db", filepath.Join(t.TempDir(), "db"), "--listen", "127.0.0.1:0"}, env)
	doRequest(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/version", nil, basic("bob", "env-pw")).wantStatus(t, http.StatusOK)
	doRequest(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/version", nil, basic("admin", "env-pw")).wantStatus(t, http.StatusUnauthorized)
	doRequest(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/version", nil, tokenHeader("env-tok")).wantStatus(t, http.StatusOK)
	if strings.Contains(stderr.String(), "warning") {
		t.Errorf("secrets from the environment caused a warning:\n%s", stderr.String())
	}
}

func TestRunNoAuthAndFaultFlags(t *testing.T) {
	t.Parallel()
	args := []string{"--db", filepath.Join(t.TempDir(), "db"), "--listen", "127.0.0.1:0",
		"--insecure-no-auth", "--fault-down-for", "1h", "--fault-seed", "7"}
	running, _, _ := startRun(t, args, nil)
	doRequest(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/version", nil, noAuth).
		wantFailure(t, http.StatusServiceUnavailable, "server down")
	doRequest(t, http.DefaultClient, http.MethodPut, running.URL+"/mock/faults", `{}`, noAuth).wantStatus(t, http.StatusOK)
	doRequest(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/version", nil, noAuth).wantStatus(t, http.StatusOK)
}
