package mockphantom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Credentials of test servers.
const (
	testUser     = "admin"
	testPassword = "s3cret pass"
	testToken    = "tok-0123456789"
)

// testEnv is a server on a fresh database in t.TempDir, served over real
// HTTP by httptest.
type testEnv struct {
	t    *testing.T
	srv  *Server
	http *httptest.Server
	url  string
	// clock, when set, is the store's clock: seedCases sets it to the
	// time each case is opened (see fixtureClock).
	clock *fixtureClock
}

// newTestEnv starts a server. cfg may leave DBPath and credentials empty;
// they are filled in (InsecureNoAuth still works).
func newTestEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	if cfg.DBPath == "" {
		cfg.DBPath = filepath.Join(t.TempDir(), "soar.db")
	}
	if !cfg.InsecureNoAuth && cfg.Password == "" && cfg.Token == "" {
		cfg.User, cfg.Password, cfg.Token = testUser, testPassword, testToken
	}
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &testEnv{t: t, srv: s, http: hs, url: hs.URL}
}

// auth sets credentials on a request.
type auth func(*http.Request)

func basic(user, pass string) auth {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func tokenHeader(tok string) auth {
	return func(r *http.Request) { r.Header.Set("ph-auth-token", tok) }
}

func noAuth(*http.Request) {}

var asAdmin = basic(testUser, testPassword)

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; body may be nil, a string or []byte (sent as is) or
// any value (sent as JSON). It fails the test on transport errors.
func (e *testEnv) do(method, path string, body any, a auth) response {
	e.t.Helper()
	return doRequest(e.t, http.DefaultClient, method, e.url+path, body, a)
}

func doRequest(t *testing.T, c *http.Client, method, url string, body any, a auth) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal request body: %v", err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	a(req)
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: out}
}

// decode parses the body into a generic value (numbers as float64).
func (r response) decode(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v; body %s", err, r.body)
	}
	return m
}

func (r response) decodeList(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatalf("answer is not a JSON list of objects: %v; body %s", err, r.body)
	}
	return l
}

// wantStatus fails unless the status is want.
func (r response) wantStatus(t *testing.T, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body %s", r.status, want, r.body)
	}
}

// wantFailure checks a {"failed": true, "message": ...} answer whose
// message contains msg.
func (r response) wantFailure(t *testing.T, status int, msg string) map[string]any {
	t.Helper()
	r.wantStatus(t, status)
	m := r.decode(t)
	if m["failed"] != true {
		t.Errorf("failed = %v, want true; body %s", m["failed"], r.body)
	}
	got, _ := m["message"].(string)
	if !strings.Contains(got, msg) {
		t.Errorf("message = %q, want it to contain %q", got, msg)
	}
	return m
}

// createContainer posts a container and returns its id.
func (e *testEnv) createContainer(c map[string]any) int64 {
	e.t.Helper()
	if c["label"] == nil {
		c["label"] = "events"
	}
	r := e.do(http.MethodPost, "/rest/container", c, asAdmin)
	r.wantStatus(e.t, http.StatusOK)
	m := r.decode(e.t)
	if m["success"] != true {
		e.t.Fatalf("create container: success = %v; body %s", m["success"], r.body)
	}
	return int64(m["id"].(float64))
}

// count returns the count of a listing.
func (e *testEnv) count(path string) int {
	e.t.Helper()
	r := e.do(http.MethodGet, path, nil, asAdmin)
	r.wantStatus(e.t, http.StatusOK)
	return int(r.decode(e.t)["count"].(float64))
}

// num reads a JSON number as int64.
func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// postJSON posts body as the admin and decodes the answer. It does not use
// testing.T, so goroutines may call it.
func postJSON(ctx context.Context, url string, body any) (map[string]any, error) {
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(buf))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(testUser, testPassword)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("status %d: decode answer: %w", res.StatusCode, err)
	}
	return m, nil
}
