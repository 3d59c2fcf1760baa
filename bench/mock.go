package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/httpstatus"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
)

// startMock starts the mock SOAR storing in dir, adding latency to every
// /rest request; wrap, when not nil, wraps its handler.
func startMock(ctx context.Context, dir string, latency time.Duration, wrap func(http.Handler) http.Handler) (*mockphantom.Server, string, func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", nil, err
	}
	s, err := mockphantom.New(ctx, mockphantom.Config{DBPath: filepath.Join(dir, "soar.db"), User: soarUser, Password: soarPassword})
	if err != nil {
		return nil, "", nil, err
	}
	s.SetFaults(mockphantom.Faults{Latency: latency})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = s.Close()
		return nil, "", nil, err
	}
	h := s.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
		_ = s.Close()
	}
	return s, "http://" + ln.Addr().String(), stop, nil
}

// writeRequests counts the requests in st that store something.
func writeRequests(st mockphantom.Stats) int64 {
	return st.ByRoute["POST /rest/container"] + st.ByRoute["POST /rest/artifact"]
}

// restRequests counts every /rest request in st: writes, the forwarder's
// checks of cached case ids (GET /rest/container) and its readiness
// probe's.
func restRequests(st mockphantom.Stats) int64 {
	var n int64
	for route, c := range st.ByRoute {
		_, path, _ := strings.Cut(route, " ")
		if strings.HasPrefix(path, "/rest/") {
			n += c
		}
	}
	return n
}

// post sends one write to the mock SOAR and returns the id of a created
// container.
func post(ctx context.Context, c *http.Client, url string, body []byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(soarUser, soarPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || bytes.Contains(answer, []byte(`"failed":true`)) {
		return 0, fmt.Errorf("POST %s: %d %.200s", url, resp.StatusCode, answer)
	}
	var created struct{ ID int64 }
	_ = json.Unmarshal(answer, &created)
	return created.ID, nil
}

// recorder notes, in front of the mock SOAR, when each alert's artifact
// was first stored: when the mock answered the write that carried it.
type recorder struct {
	mu     sync.Mutex
	stored map[string]time.Time // Falco event ID -> stored
}

func newRecorder() *recorder { return &recorder{stored: map[string]time.Time{}} }

var sdiMark = []byte(`"source_data_identifier":"falco-event-`)

func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		var body bytes.Buffer
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(r.Body, &body), r.Body}
		sw := &httpstatus.Recorder{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.Status == http.StatusOK {
			rec.note(body.Bytes(), time.Now())
		}
	})
}

// note records at as the time each alert named in body was stored, unless
// it was stored before.
func (rec *recorder) note(body []byte, at time.Time) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for {
		i := bytes.Index(body, sdiMark)
		if i < 0 {
			return
		}
		body = body[i+len(sdiMark):]
		end := bytes.IndexByte(body, '"')
		if end < 0 {
			return
		}
		id := string(body[:end])
		if _, seen := rec.stored[id]; !seen {
			rec.stored[id] = at
		}
	}
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.stored)
}

func (rec *recorder) times() map[string]time.Time {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return maps.Clone(rec.stored)
}
