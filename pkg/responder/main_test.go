package responder_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/pki"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/responder"
)

// The tests run the responder over real HTTPS against a real API server
// (envtest) and, for the notes, the real mock SOAR. No kubelet runs:
// pods never start and their status is written by the tests.
var (
	apiServer *testkit.APIServer
	noAPIWhy  string
)

func TestMain(m *testing.M) { testkit.RunWithAPIServer(m, &apiServer, &noAPIWhy) }

// token is what callers of the test responders send. Tests look for it
// in logs and answers: it must never be there.
const token = "responder-token-never-printed-7f3a"

// running is a responder serving on loopback.
type running struct {
	url    string
	client *http.Client
	logs   *testkit.Buffer
	dir    string
	stop   func() error
}

// start runs a responder acting in namespaces, with cfg's other fields
// changed by mutate, until the test ends.
func start(t *testing.T, namespaces []string, mutate ...func(*responder.Config)) *running {
	t.Helper()
	testkit.Need(t, apiServer, noAPIWhy)
	return startAs(t, apiServer.Kube, namespaces, mutate...)
}

// startAs is start acting with kube's rights.
func startAs(t *testing.T, kube kubernetes.Interface, namespaces []string, mutate ...func(*responder.Config)) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, ln, kube, namespaces, mutate...)
}

// startOn is startAs serving on ln.
func startOn(t *testing.T, ln net.Listener, kube kubernetes.Interface, namespaces []string, mutate ...func(*responder.Config)) *running {
	t.Helper()
	dir := t.TempDir()
	b, err := pki.NewServer("responder test CA", []string{"127.0.0.1", "localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "tls.crt"), string(b.Cert))
	write(t, filepath.Join(dir, "tls.key"), string(b.Key))
	write(t, filepath.Join(dir, "token"), token+"\n")
	cfg := responder.Defaults()
	cfg.CertFile, cfg.KeyFile, cfg.TokenFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "token")
	cfg.Policy.Namespaces, cfg.Policy.Protected = namespaces, respond.ProtectedNamespaces("falco-phantom")
	cfg.Rate, cfg.Burst = 1000, 1000
	for _, m := range mutate {
		m(&cfg)
	}
	logs := &testkit.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := responder.New(cfg, kube, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var stopped atomic.Bool
	stop := func() error {
		if stopped.Swap(true) {
			return nil
		}
		cancel()
		return <-done
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("responder stopped with %v", err)
		}
		if strings.Contains(logs.String(), token) {
			t.Errorf("the token is in the log:\n%s", logs.String())
		}
	})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b.CACert)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(client.CloseIdleConnections)
	return &running{url: "https://" + ln.Addr().String(), client: client, logs: logs, dir: dir, stop: stop}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// answer is one HTTP answer.
type answer struct {
	status int
	header http.Header
	body   string
}

// errorOf reads a typed error answer.
func (a answer) errorOf(t *testing.T) (id string, code respond.Code, msg string) {
	t.Helper()
	var e struct {
		RequestID string `json:"request_id"`
		Error     struct {
			Code    respond.Code `json:"code"`
			Message string       `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.RequestID == "" || e.Error.Code == "" {
		t.Fatalf("answer %d is not a typed error (%v): %s", a.status, err, a.body)
	}
	return e.RequestID, e.Error.Code, e.Error.Message
}

func (a answer) result(t *testing.T) respond.Result {
	t.Helper()
	var r respond.Result
	if a.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", a.status, a.body)
	}
	dec := json.NewDecoder(strings.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("answer is not a Result: %v\n%s", err, a.body)
	}
	return r
}

// post sends body to the action with the token given ("" for none).
func (r *running) post(t *testing.T, action, bearer string, body any) answer {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, r.url+"/v1/actions/"+action, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return r.do(t, req)
}

func (r *running) get(t *testing.T, path string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.do(t, req)
}

func (r *running) do(t *testing.T, req *http.Request) answer {
	t.Helper()
	res, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), token) {
		t.Errorf("the answer holds the token: %s", b)
	}
	return answer{status: res.StatusCode, header: res.Header, body: string(b)}
}

// auditOf finds the audit log line of a request.
func (r *running) auditOf(t *testing.T, id string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(r.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "audit" && m["request_id"] == id {
			return m
		}
	}
	t.Fatalf("no audit line for request %s:\n%s", id, r.logs.String())
	return nil
}

var nsSeq atomic.Int64

func newNamespace(t *testing.T) string {
	t.Helper()
	testkit.Need(t, apiServer, noAPIWhy)
	ns := fmt.Sprintf("responder-%d", nsSeq.Add(1))
	if _, err := apiServer.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = apiServer.Kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return ns
}

// newPod creates a pod that says it runs a container of id.
func newPod(t *testing.T, ns, name, id string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	kube := apiServer.Kube
	p, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name, UID: "uid-" + "rs", Controller: new(true)}}},
		Spec: corev1.PodSpec{AutomountServiceAccountToken: new(false), Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1.0"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "registry.example/app:1.0", ContainerID: "containerd://" + id + strings.Repeat("0", 64-len(id)), Ready: true}}
	if p, err = kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func getPod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := apiServer.Kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
