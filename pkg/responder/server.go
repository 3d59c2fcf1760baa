// Package responder is falco-phantom-responder, the HTTPS service a SOAR
// playbook calls to act on the cluster: POST /v1/actions/<action> with a
// bearer token and the JSON of a respond.Request, answered with the
// respond.Result or a typed error (docs/respond.md). The actions are
// pkg/respond's; this package adds the door: TLS, the token, a rate limit,
// bounded strict input, the audit of what never reached an action, the
// notes into SOAR cases, health and metrics.
package responder

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// Server is one responder process.
type Server struct {
	cfg       Config
	log       *slog.Logger
	kube      kubernetes.Interface
	responder *respond.Responder
	// audit records what is refused before it reaches an action: in the
	// log only, since nothing proves the caller may write into cases.
	audit   respond.Auditor
	token   *tokenFile
	cert    *keyPair
	limiter *rate.Limiter
	metrics *Metrics
	ready   *readiness
	soarURL string
}

// New checks cfg and prepares a responder acting through kube; Serve or
// Run starts it.
func New(cfg Config, kube kubernetes.Interface, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	soar, err := cfg.SOAR.client()
	if err != nil {
		return nil, err
	}
	logAudit := respond.LogAuditor{Log: log}
	auditors := respond.Auditors{logAudit}
	s := &Server{
		cfg: cfg, log: log, kube: kube, audit: logAudit,
		token:   &tokenFile{path: cfg.TokenFile},
		cert:    &keyPair{certFile: cfg.CertFile, keyFile: cfg.KeyFile},
		limiter: rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst),
		metrics: newMetrics(),
	}
	if soar != nil {
		auditors = append(auditors, respond.NoteAuditor{SOAR: soar, Source: "falco-phantom-responder", Timeout: cfg.SOAR.Timeout})
		s.soarURL = soar.BaseURL()
	}
	s.responder = &respond.Responder{Kube: kube, Policy: cfg.Policy, Audit: auditors}
	s.ready = &readiness{check: s.apiServerAnswers}
	return s, nil
}

// Metrics returns the responder's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Handler serves the API, /healthz, /readyz and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/actions/{action}", s.serveAction)
	mux.HandleFunc("/v1/actions/{action}", s.serveWrongMethod)
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}))
	return mux
}

// Run listens on cfg.Listen and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves HTTPS on ln until ctx ends, then stops taking connections
// and waits for the requests in flight, for at most ShutdownTimeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Fail now, not at the first handshake, when the certificate is bad.
	if _, err := s.cert.get(); err != nil {
		ln.Close()
		return err
	}
	if _, err := s.token.get(); err != nil {
		s.log.Warn("the token cannot be read: every request is refused until it can", "error", err)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      s.cfg.ActionTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.get() },
		},
	}
	s.logStart(ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("stopping: finishing the requests in flight", "timeout", s.cfg.ShutdownTimeout.String())
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	s.log.Info("responder stopped")
	return nil
}

func (s *Server) logStart(addr string) {
	p := s.cfg.Policy
	actions := make([]string, len(p.Actions))
	for i, a := range p.Actions {
		actions[i] = string(a)
	}
	s.log.Info("starting responder", "listen", addr, "namespaces", strings.Join(p.Namespaces, ","),
		"protected", strings.Join(p.Protected, ","), "actions", strings.Join(actions, ","),
		"rate", s.cfg.Rate, "burst", s.cfg.Burst)
	switch {
	case s.soarURL == "":
		s.log.Warn("no SOAR configured: outcomes are logged, not noted into cases")
	case !s.cfg.SOAR.VerifySSL:
		s.log.Warn("TLS certificate verification of SOAR is OFF (VERIFY_SSL=false): anyone on the path can read the notes and SOAR's credentials", "phantom", s.soarURL)
	default:
		s.log.Info("outcomes are noted into the cases", "phantom", s.soarURL)
	}
}
