// Package mockphantom is a small stand-in for the Splunk SOAR (formerly
// Phantom) REST API. It implements the subset of /rest that the forwarder
// and the responder use (containers, artifacts, notes, action runs,
// listings, version, container options), keeps everything in a SQLite file
// so that data survives restarts, can inject faults (latency, errors, hangs,
// outages), runs playbooks that call the responder on new cases, and serves
// a web page where people can watch cases arrive, filter and search them,
// read a case's timeline and change its status and owner.
package mockphantom

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/httpstatus"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// Version is the SOAR version that GET /rest/version reports.
const Version = "6.4.0.92"

// statusClientClosed counts, in Stats, requests that the client gave up
// before any answer was written (nginx's convention). Nothing is sent.
const statusClientClosed = 499

// Defaults applied by New to zero fields of Config.
const (
	DefaultMaxBodyBytes    int64 = 64 << 20
	DefaultDuplicateStatus       = http.StatusOK
)

// Container statuses and sensitivities that the mock accepts.
var (
	containerStatuses    = []string{"new", "open", "closed"}
	containerSensitivity = []string{"white", "green", "amber", "red"}
)

// Config configures a Server. The zero value of every field but DBPath and
// the credentials has a sensible default.
type Config struct {
	// DBPath is the SQLite file that holds all data; it is created if
	// missing.
	DBPath string
	// User and Password are the HTTP basic credentials of the one user.
	User, Password string
	// Token is accepted in the "ph-auth-token" header, or as the basic
	// password with an empty user name.
	Token string
	// InsecureNoAuth accepts every request without credentials.
	InsecureNoAuth bool
	// Labels lists the container labels that exist; default ["events"].
	Labels []string
	// Severities lists the severities that exist; default high, medium, low.
	Severities []string
	// DuplicateStatus is the HTTP status of duplicate answers; default 200.
	// The status the real product uses is unverified, so it is settable.
	DuplicateStatus int
	// MaxBodyBytes limits request bodies; default 64 MiB. Larger bodies
	// are answered with 413.
	MaxBodyBytes int64
	// PlaybooksFile is a YAML file of playbooks that act on new cases by
	// calling falco-phantom-responder (see the README); "" runs none. It
	// is read and checked by New.
	PlaybooksFile string
	// FaultSeed seeds the random source of fault injection so that runs
	// can be repeated; 0 picks a random seed.
	FaultSeed uint64
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
}

// Server is the mock SOAR server. Create it with New, serve its Handler (or
// use Serve) and Close it when done.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store
	pages *template.Template
	mux   *http.ServeMux
	// formKey signs the tokens of the web page's forms; drawn at New, so
	// a restart makes the forms of open pages out of date.
	formKey []byte

	faultMu sync.Mutex
	faults  Faults
	rng     *rand.Rand
	release chan struct{} // closed to release requests hung by TimeoutRate

	playbooks *playbooks // nil without Config.PlaybooksFile

	stats  statsCounter
	bodies sync.Pool // *bytes.Buffer for request bodies

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, opens (and creates or migrates) the database and
// returns a Server ready to serve.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	set, err := readPlaybooks(cfg)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DBPath)
	if err != nil {
		return nil, err
	}
	if n, err := st.FailRunningActionRuns(ctx, interruptedRun); err != nil {
		_ = st.Close()
		return nil, err
	} else if n > 0 {
		cfg.Logger.Warn("action runs left running by an earlier mockphantom are marked failed", "runs", n)
	}
	seed := cfg.FaultSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		store:   st,
		pages:   pages,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		release: make(chan struct{}),
		formKey: make([]byte, 32),
	}
	_, _ = cryptorand.Read(s.formKey) // never fails (crypto/rand.Read)
	s.playbooks = newPlaybooks(set, st, cfg.Logger)
	s.stats.init()
	s.mux = s.routes()
	return s, nil
}

func withDefaults(cfg Config) (Config, error) {
	if cfg.DBPath == "" {
		return cfg, errors.New("DBPath is required")
	}
	if cfg.Password != "" && cfg.User == "" {
		return cfg, errors.New("a password needs a user name")
	}
	if cfg.User != "" && cfg.Password == "" {
		return cfg, errors.New("user " + strconv.Quote(cfg.User) + " needs a password")
	}
	if !cfg.InsecureNoAuth && cfg.Password == "" && cfg.Token == "" {
		return cfg, errors.New("no credentials configured (set a user and password or a token, or allow InsecureNoAuth)")
	}
	var err error
	if cfg.Labels, err = cleanList("label", cfg.Labels, []string{"events"}); err != nil {
		return cfg, err
	}
	if cfg.Severities, err = cleanList("severity", cfg.Severities, []string{"high", "medium", "low"}); err != nil {
		return cfg, err
	}
	if !slices.Contains(cfg.Severities, "medium") {
		return cfg, errors.New(`severities must include "medium", the default severity`)
	}
	if cfg.DuplicateStatus == 0 {
		cfg.DuplicateStatus = DefaultDuplicateStatus
	}
	if cfg.DuplicateStatus < 200 || cfg.DuplicateStatus > 599 {
		return cfg, fmt.Errorf("duplicate status %d is not an HTTP status between 200 and 599", cfg.DuplicateStatus)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// cleanList trims the entries, drops duplicates and falls back to def when
// nothing is left.
func cleanList(what string, in, def []string) ([]string, error) {
	var out []string
	for _, v := range in {
		v = strings.TrimSpace(v)
		if v == "" {
			return nil, fmt.Errorf("empty %s name", what)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return slices.Clone(def), nil
	}
	return out, nil
}

// Handler returns the HTTP handler of the whole server: /rest, /mock, the
// web page and /healthz.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// Labels returns the container labels that exist: Config.Labels after
// defaults and cleaning.
func (s *Server) Labels() []string {
	return slices.Clone(s.cfg.Labels)
}

// Playbooks lists the names of the playbooks of Config.PlaybooksFile, in
// file order.
func (s *Server) Playbooks() []string {
	if s.playbooks == nil {
		return nil
	}
	return s.playbooks.set.Names()
}

// Close releases hung requests, stops the playbooks in flight (they record
// that they were interrupted) and closes the database. Stop serving first
// (Running.Close) so that no request uses the database afterwards.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.releaseHung()
		s.playbooks.stop()
		s.closeErr = s.store.Close()
	})
	return s.closeErr
}

// routes registers every route. Patterns carry no method so that wrong
// methods get a JSON 405 from methods() rather than the mux's plain text.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/healthz", methods{http.MethodGet: s.healthz})

	mux.Handle("/rest/", s.rest(http.HandlerFunc(s.notFound)))
	mux.Handle("/rest/version", s.rest(methods{http.MethodGet: s.version}))
	mux.Handle("/rest/container_options", s.rest(methods{http.MethodGet: s.containerOptions}))
	mux.Handle("/rest/container", s.rest(methods{
		http.MethodGet:  s.listContainers,
		http.MethodPost: s.createContainer,
	}))
	mux.Handle("/rest/container/{id}", s.rest(methods{
		http.MethodGet:    s.getContainer,
		http.MethodPost:   s.updateContainer,
		http.MethodDelete: s.deleteContainer,
	}))
	mux.Handle("/rest/container/{id}/artifacts", s.rest(methods{http.MethodGet: s.listContainerArtifacts}))
	mux.Handle("/rest/artifact", s.rest(methods{
		http.MethodGet:  s.listArtifacts,
		http.MethodPost: s.createArtifacts,
	}))
	mux.Handle("/rest/artifact/{id}", s.rest(methods{http.MethodGet: s.getArtifact}))
	mux.Handle("/rest/note", s.rest(methods{
		http.MethodGet:  s.listNotes,
		http.MethodPost: s.createNote,
	}))
	mux.Handle("/rest/note/{id}", s.rest(methods{http.MethodGet: s.getNote}))
	mux.Handle("/rest/action_run", s.rest(methods{http.MethodGet: s.listActionRuns}))
	mux.Handle("/rest/action_run/{id}", s.rest(methods{http.MethodGet: s.getActionRun}))

	mux.Handle("/mock/faults", s.authed(methods{
		http.MethodGet: s.getFaults,
		http.MethodPut: s.putFaults,
	}))
	mux.Handle("/mock/stats", s.authed(methods{http.MethodGet: s.getStats}))

	mux.Handle("/{$}", s.authed(methods{http.MethodGet: s.indexPage}))
	mux.Handle("/container/{id}", s.authed(methods{
		http.MethodGet:  s.containerPage,
		http.MethodPost: s.caseFormPost,
	}))
	mux.HandleFunc("/", s.notFound)
	return mux
}

// serveHTTP is the outermost layer: body limit, routing, counters and an
// access log line (method, path and status only; never headers).
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &httpstatus.Recorder{ResponseWriter: w}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		writeError(rec, http.StatusRequestEntityTooLarge, tooLargeMessage(s.cfg.MaxBodyBytes))
	} else {
		r.Body = http.MaxBytesReader(rec, r.Body, s.cfg.MaxBodyBytes)
		s.mux.ServeHTTP(rec, r)
	}
	status := rec.Status
	switch {
	case status == 0 && r.Context().Err() != nil:
		status = statusClientClosed
	case status == 0:
		status = http.StatusOK
	}
	route := "unmatched"
	if r.Pattern != "" {
		route = r.Method + " " + r.Pattern
	}
	s.stats.request(route, status)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Duration("duration", time.Since(start)))
}

// rest wraps a /rest handler: faults first (they stand for an unavailable
// server, which answers before checking anyone's credentials), then auth.
func (s *Server) rest(h http.Handler) http.Handler {
	return s.withFaults(s.authed(h))
}

// authed answers 401 unless the request carries valid credentials.
func (s *Server) authed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, viaToken := s.authenticate(r)
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", `Basic realm="mockphantom"`)
			writeError(w, http.StatusUnauthorized, "Authentication failed: valid user credentials or ph-auth-token required.")
		case viaToken && r.Method == http.MethodDelete:
			w.Header().Set("WWW-Authenticate", `Basic realm="mockphantom"`)
			writeError(w, http.StatusUnauthorized, "Token authentication is not allowed for DELETE requests; user credentials (HTTP basic) are needed.")
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// authenticate reports whether r carries valid credentials and whether
// they were the token. Secrets are compared in constant time.
func (s *Server) authenticate(r *http.Request) (ok, viaToken bool) {
	if s.cfg.InsecureNoAuth {
		return true, false
	}
	// User credentials first, so that a request carrying both them and a
	// token may still DELETE.
	user, pass, hasBasic := r.BasicAuth()
	if hasBasic && user != "" && s.cfg.User != "" {
		userOK := secretEqual(user, s.cfg.User)
		passOK := secretEqual(pass, s.cfg.Password)
		if userOK && passOK {
			return true, false
		}
	}
	if s.cfg.Token == "" {
		return false, false
	}
	if tok := r.Header.Get("ph-auth-token"); tok != "" && secretEqual(tok, s.cfg.Token) {
		return true, true
	}
	if hasBasic && user == "" && secretEqual(pass, s.cfg.Token) {
		return true, true
	}
	return false, false
}

// secretEqual compares hashes so that neither content nor length leaks
// through timing.
func secretEqual(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// methods dispatches on the request method and answers 405 (in JSON, with
// an Allow header) for the others.
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m[r.Method]; ok {
		h(w, r)
		return
	}
	allowed := make([]string, 0, len(m))
	for k := range m {
		allowed = append(allowed, k)
	}
	slices.Sort(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed here; allowed: %s", r.Method, strings.Join(allowed, ", ")))
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": Version})
}

func (s *Server) containerOptions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]string{
		"label":       s.cfg.Labels,
		"severity":    s.cfg.Severities,
		"status":      containerStatuses,
		"sensitivity": containerSensitivity,
	})
}

// errorBody is the shape of every error answer.
type errorBody struct {
	Failed  bool   `json:"failed"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Failed: true, Message: msg})
}

// internalError logs the detail and answers with a generic message.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, op string, err error) {
	s.log.ErrorContext(r.Context(), "storage error", slog.String("op", op), slog.Any("err", err))
	writeError(w, http.StatusInternalServerError, "internal server error")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only values built by this package are encoded; failing here is
		// a bug, but the client still deserves a JSON answer.
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"failed": true, "message": "internal server error"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

func tooLargeMessage(limit int64) string {
	return fmt.Sprintf("request body too large: the limit is %d bytes", limit)
}

// restID is pathID for /rest: it answers 404 itself when ok is false.
func restID(w http.ResponseWriter, r *http.Request, what string) (id int64, ok bool) {
	if id, ok = pathID(r); !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %q does not exist", what, r.PathValue("id")))
	}
	return id, ok
}

// pathID parses the {id} path value; ok is false when it is not a
// positive integer.
func pathID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}
