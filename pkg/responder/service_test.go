package responder_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/responder"
)

// /healthz, /readyz and /metrics need no token; the metrics count
// requests by action and code, with nothing a caller wrote as a label.
func TestHealthAndMetrics(t *testing.T) {
	ns := newNamespace(t)
	newPod(t, ns, "web", "4ea1744e0000")
	r := start(t, []string{ns})
	for _, path := range []string{"/healthz", "/readyz"} {
		if a := r.get(t, path); a.status != 200 || a.body != "ok\n" {
			t.Errorf("%s: %d %q", path, a.status, a.body)
		}
	}
	r.post(t, "describe", token, map[string]any{"namespace": ns, "pod": "web"})
	r.post(t, "isolate", "", map[string]any{})
	r.post(t, "no-such-action-"+strings.Repeat("x", 20), token, map[string]any{"namespace": ns, "pod": "web"})
	m := r.get(t, "/metrics")
	for _, want := range []string{
		responder.MetricRequests + `{action="describe",code="ok"} 1`,
		responder.MetricRequests + `{action="isolate",code="unauthorized"} 1`,
		responder.MetricRequests + `{action="unknown",code="unknown_action"} 1`,
		responder.MetricDuration + `_count{action="describe"} 1`,
	} {
		if !strings.Contains(m.body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(m.body, "no-such-action") {
		t.Error("a caller's action name became a label")
	}
}

// A broken token file makes the responder not ready and refuse every
// request; a new token takes effect without a restart.
func TestTokenFileIsReadAgain(t *testing.T) {
	ns := newNamespace(t)
	newPod(t, ns, "web", "70ce70ce0000")
	r := start(t, []string{ns})
	file := filepath.Join(r.dir, "token")
	describe := map[string]any{"namespace": ns, "pod": "web"}
	if a := r.post(t, "describe", token, describe); a.status != 200 {
		t.Fatalf("describe: %d %s", a.status, a.body)
	}
	write(t, file, "\n")
	if a := r.get(t, "/readyz"); a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "is empty") {
		t.Errorf("readyz with an empty token file: %d %q", a.status, a.body)
	}
	if a := r.post(t, "describe", token, describe); a.status != 401 {
		t.Errorf("a request while the token cannot be read: %d, want 401", a.status)
	}
	// Another token, as a rotated Secret is mounted (the file's time moves).
	time.Sleep(10 * time.Millisecond)
	write(t, file, "rotated-token-0000\n")
	if a := r.post(t, "describe", token, describe); a.status != 401 {
		t.Errorf("the old token after rotation: %d, want 401", a.status)
	}
	if a := r.post(t, "describe", "rotated-token-0000", describe); a.status != 200 {
		t.Errorf("the new token: %d %s", a.status, a.body)
	}
	if strings.Contains(r.logs.String(), "rotated-token-0000") {
		t.Error("the rotated token is in the log")
	}
}

// TLS only, 1.2 at least; a stop waits for nothing and returns cleanly.
func TestTLSAndShutdown(t *testing.T) {
	r := start(t, []string{"default"})
	host := strings.TrimPrefix(r.url, "https://")
	if c, err := tls.Dial("tcp", host, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil { //nolint:gosec // the point of the test
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
	plain, err := http.Get("http://" + host + "/healthz")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Error("plain HTTP was served")
		}
	}
	if err := r.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !strings.Contains(r.logs.String(), "responder stopped") {
		t.Errorf("no stop in the log:\n%s", r.logs.String())
	}
	if _, err := r.client.Get(r.url + "/healthz"); err == nil {
		t.Error("still serving after the stop")
	}
}

// The configuration says what is missing, never a secret.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	cfg := responder.Defaults()
	cfg.SOAR.BaseURL = "https://user:hunter2@soar.example.com"
	_, err := responder.New(cfg, nil, nil)
	for _, want := range []string{"certificate and key files", "no token file", "no namespace allowed", "must not contain credentials"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Error("the error quotes the password")
	}
	// A certificate that cannot be read stops Serve at once.
	dir := t.TempDir()
	cfg = responder.Defaults()
	cfg.CertFile, cfg.KeyFile, cfg.TokenFile, cfg.Policy.Namespaces = filepath.Join(dir, "x.crt"), filepath.Join(dir, "x.key"), filepath.Join(dir, "t"), []string{"*"}
	cfg.Listen = "127.0.0.1:0"
	srv, err := responder.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Run(ctx); err == nil || !strings.Contains(err.Error(), "TLS certificate") {
		t.Errorf("Run without a certificate: %v", err)
	}
}
