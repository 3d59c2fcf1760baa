package responder_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/pki"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/responder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
)

var (
	apiServer *testkit.APIServer
	noAPIWhy  string
)

func TestMain(m *testing.M) { testkit.RunWithAPIServer(m, &apiServer, &noAPIWhy) }

func run(ctx context.Context, env map[string]string, args ...string) (string, *testkit.Buffer, error) {
	var out bytes.Buffer
	errOut := &testkit.Buffer{}
	err := responder.Run(ctx, args, genericiooptions.IOStreams{Out: &out, ErrOut: errOut}, func(k string) string { return env[k] })
	return out.String(), errOut, err
}

func TestFlagErrorsAndVersion(t *testing.T) {
	t.Parallel()
	out, _, err := run(context.Background(), nil, "--version")
	if err != nil || !strings.HasPrefix(out, "falco-phantom-responder ") {
		t.Errorf("--version: %q, %v", out, err)
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown action", nil, []string{"--actions", "isolate,explode"}, `--actions: unknown action "explode"`},
		{"empty actions", nil, []string{"--actions", ","}, "--actions is empty"},
		{"bad rate", map[string]string{"RATE_LIMIT": "fast"}, nil, `RATE_LIMIT="fast"`},
		{"bad verify", map[string]string{"VERIFY_SSL": "maybe"}, nil, "want true or false"},
		{"nothing given", nil, []string{"--kubeconfig", "/nonexistent"}, "no namespace allowed"},
		{"bad log level", nil, []string{"--log-level", "loud"}, "--log-level"},
	} {
		_, _, err := run(context.Background(), c.env, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// The command, given a kubeconfig and its files, serves the API over
// HTTPS; POD_NAMESPACE is protected under *.
func TestServes(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kube := apiServer.Kube
	for _, ns := range []string{"shop", "fp-install"} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	b, err := pki.NewServer("ca", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"tls.crt": b.Cert, "tls.key": b.Key, "token": []byte("cmd-test-token\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"RESPONDER_NAMESPACES": "*", "POD_NAMESPACE": "fp-install", "RESPONDER_TOKEN_FILE": filepath.Join(dir, "token")}
	done := make(chan error, 1)
	logs := &testkit.Buffer{}
	go func() {
		args := []string{"--kubeconfig", apiServer.Kubeconfig, "--listen", "127.0.0.1:0",
			"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key"), "--log-format", "json"}
		done <- responder.Run(ctx, args, genericiooptions.IOStreams{Out: &bytes.Buffer{}, ErrOut: logs}, func(k string) string { return env[k] })
	}()
	var addr string
	testkit.WaitFor(t, 10*time.Second, func() error {
		for _, line := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "starting responder" {
				addr = m["listen"].(string)
				return nil
			}
		}
		select {
		case err := <-done:
			t.Fatalf("the command ended: %v\n%s", err, logs.String())
		default:
		}
		return os.ErrNotExist
	})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b.CACert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	post := func(ns string) int {
		req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/v1/actions/describe", strings.NewReader(`{"namespace":"`+ns+`","pod":"web"}`))
		req.Header.Set("Authorization", "Bearer cmd-test-token")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := post("shop"); got != 200 {
		t.Errorf("describe in shop: %d", got)
	}
	if got := post("fp-install"); got != http.StatusForbidden {
		t.Errorf("describe in POD_NAMESPACE under *: %d, want 403", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("stop: %v", err)
	}
	if strings.Contains(logs.String(), "cmd-test-token") {
		t.Error("the token is in the log")
	}
}
