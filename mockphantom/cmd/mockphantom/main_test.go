package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/syncbuf"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// streams returns IOStreams writing to stdout and stderr.
func streams(stdout, stderr io.Writer) genericiooptions.IOStreams {
	return genericiooptions.IOStreams{In: strings.NewReader(""), Out: stdout, ErrOut: stderr}
}

// call sends a request and returns the answer's status and body; auth sets
// the credentials, if any.
func call(t *testing.T, c *http.Client, method, url, body string, auth func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if auth != nil {
		auth(req)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return res.StatusCode, string(b)
}

// wantStatus calls and fails unless the answer has status want.
func wantStatus(t *testing.T, c *http.Client, method, url, body string, auth func(*http.Request), want int) string {
	t.Helper()
	got, answer := call(t, c, method, url, body, auth)
	if got != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, url, got, want, answer)
	}
	return answer
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func tokenHeader(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("ph-auth-token", tok) }
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
		{"empty token file", []string{"--db", db, "--token-file", emptyFile}, nil, "failed to read --token-file: " + emptyFile + " is empty"},
		{"empty password file", []string{"--db", db, "--password-file", emptyFile}, nil, "failed to read --password-file: " + emptyFile + " is empty"},
		{"unknown flag", []string{"--db", db, "--bogus"}, nil, "unknown flag: --bogus (see --help)"},
		{"single-dash long flag", []string{"-db", db}, map[string]string{envToken: "t"}, "unknown shorthand flag"},
		{"no short version flag", []string{"-v"}, nil, "unknown shorthand flag: 'v' in -v"},
		{"arguments", []string{"--db", db, "extra"}, map[string]string{envToken: "t"}, "unexpected arguments"},
		{"bad log format", []string{"--db", db, "--log-format", "xml"}, map[string]string{envToken: "t"}, "--log-format"},
		{"bad log level", []string{"--db", db, "--log-level", "loud"}, map[string]string{envToken: "t"}, "--log-level"},
		{"cert without key", []string{"--db", db, "--tls-cert", "c.pem"}, map[string]string{envToken: "t"}, "go together"},
		{"self-signed and cert", []string{"--db", db, "--tls-self-signed", "--tls-cert", "c", "--tls-key", "k"}, map[string]string{envToken: "t"}, "exclude each other"},
		{"ca-out without self-signed", []string{"--db", db, "--tls-ca-out", "ca.pem"}, map[string]string{envToken: "t"}, "--tls-ca-out needs --tls-self-signed"},
		{"error rate above 1", []string{"--db", db, "--fault-error-rate", "2"}, map[string]string{envToken: "t"}, "--fault-error-rate"},
		{"bad duration", []string{"--db", db, "--fault-latency", "soon"}, map[string]string{envToken: "t"}, "fault-latency"},
		{"missing playbooks file", []string{"--db", db, "--playbooks", filepath.Join(t.TempDir(), "nope.yaml")}, map[string]string{envToken: "t"}, "failed to read playbooks file: open "},
		{"bad playbooks file", []string{"--db", db, "--playbooks", writeFile(t, "pb.yaml", "- name: p\n  action: isolat\n")}, map[string]string{envToken: "t"}, `playbook 1 (p): action "isolat" is unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr syncbuf.Buffer
			err := Run(t.Context(), tt.args, streams(&stdout, &stderr), envOf(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr syncbuf.Buffer
	if err := Run(t.Context(), []string{"--help"}, streams(&stdout, &stderr), envOf(nil)); err != nil {
		t.Fatalf("Run --help = %v, want nil", err)
	}
	for _, want := range []string{"Usage: mockphantom --db FILE", "--db file", "--insecure-no-auth", "--label label", `(default "admin")`, envPassword, "--playbooks file", "--version"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestRunVersion prints the line every binary of the project prints, and
// needs neither a database nor credentials.
func TestRunVersion(t *testing.T) {
	t.Parallel()
	var stdout, stderr syncbuf.Buffer
	if err := Run(t.Context(), []string{"--version"}, streams(&stdout, &stderr), envOf(nil)); err != nil {
		t.Fatalf("Run --version = %v, want nil; stderr %s", err, stderr.String())
	}
	if got, want := stdout.String(), cmdmain.VersionLine("mockphantom")+"\n"; got != want {
		t.Errorf("--version printed %q, want %q", got, want)
	}
	if !strings.HasPrefix(stdout.String(), "mockphantom dev (go1.") || stderr.String() != "" {
		t.Errorf("--version printed %q and %q on stderr; want \"mockphantom dev (go...)\" alone", stdout.String(), stderr.String())
	}
}

// startRun runs the command in the background and returns once it serves.
func startRun(t *testing.T, args []string, env map[string]string) (*mockphantom.Running, *syncbuf.Buffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncbuf.Buffer
	ready := make(chan *mockphantom.Running, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, streams(&stdout, &stderr), envOf(env), func(r *mockphantom.Running) { ready <- r })
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
		t.Fatalf("Run(%q) ended before serving: %v; stderr:\n%s", args, err, stderr.String())
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

	wantStatus(t, client, http.MethodGet, running.URL+"/rest/version", "", basic("admin", password), http.StatusOK)
	wantStatus(t, client, http.MethodGet, running.URL+"/rest/version", "", tokenHeader(token), http.StatusOK)
	c := `{"name": "c", "label": "falco", "source_data_identifier": "x"}`
	wantStatus(t, client, http.MethodPost, running.URL+"/rest/container", c, tokenHeader(token), http.StatusOK)
	wantStatus(t, client, http.MethodPost, running.URL+"/rest/container", c, tokenHeader(token), http.StatusConflict)

	if err := stop(); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
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
	wantStatus(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/version", "", basic("bob", "env-pw"), http.StatusOK)
	wantStatus(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/version", "", basic("admin", "env-pw"), http.StatusUnauthorized)
	wantStatus(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/version", "", tokenHeader("env-tok"), http.StatusOK)
	if strings.Contains(stderr.String(), "warning") {
		t.Errorf("secrets from the environment caused a warning:\n%s", stderr.String())
	}
}

func TestRunPlaybooksFlag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("responder-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	playbooks := filepath.Join(dir, "playbooks.yaml")
	yaml := "- name: describe-shells\n  match: {rule: Terminal shell in container}\n  action: describe\n" +
		"  responder: {url: 'https://127.0.0.1:1', token_file: token, insecure_skip_verify: true}\n"
	if err := os.WriteFile(playbooks, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, stop := startRun(t, []string{"--db", filepath.Join(dir, "db"), "--listen", "127.0.0.1:0", "--insecure-no-auth", "--playbooks", playbooks}, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"playbooks=describe-shells", "insecure_skip_verify"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "responder-token") {
		t.Errorf("stderr shows the responder's token:\n%s", stderr.String())
	}
}

func TestRunNoAuthAndFaultFlags(t *testing.T) {
	t.Parallel()
	args := []string{"--db", filepath.Join(t.TempDir(), "db"), "--listen", "127.0.0.1:0",
		"--insecure-no-auth", "--fault-down-for", "1h", "--fault-seed", "7"}
	running, _, _ := startRun(t, args, nil)
	if body := wantStatus(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/version", "", nil, http.StatusServiceUnavailable); !strings.Contains(body, "server down") {
		t.Errorf("answer while down = %s, want the injected fault named", body)
	}
	wantStatus(t, http.DefaultClient, http.MethodPut, running.URL+"/mock/faults", `{}`, nil, http.StatusOK)
	wantStatus(t, http.DefaultClient, http.MethodGet, running.URL+"/rest/version", "", nil, http.StatusOK)
}
