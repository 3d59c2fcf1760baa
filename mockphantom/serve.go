package mockphantom

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// shutdownGrace is how long Running.Close waits for requests in flight.
const shutdownGrace = 10 * time.Second

// Running is a server listening in the background; see Serve.
type Running struct {
	// URL is the base URL of the server, such as https://127.0.0.1:8443.
	URL string
	// Addr is the address the listener is bound to.
	Addr net.Addr

	srv       *http.Server
	done      chan struct{}
	serveErr  error
	closeOnce sync.Once
	closeErr  error
}

// Serve listens on addr (such as "127.0.0.1:0") and serves s in the
// background, with TLS when tlsCfg is not nil. It returns once the listener
// is bound. Cancelling ctx shuts the server down as Close does.
func Serve(ctx context.Context, s *Server, addr string, tlsCfg *tls.Config) (*Running, error) {
	if s == nil {
		return nil, errors.New("serve: no Server given")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	run := &Running{
		URL:  scheme + "://" + urlHost(ln.Addr()),
		Addr: ln.Addr(),
		srv: &http.Server{
			Handler:           s.Handler(),
			TLSConfig:         tlsCfg,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		},
		done: make(chan struct{}),
	}
	// Requests hung by an injected timeout would hold up a graceful
	// shutdown until the grace period ends; release them first.
	run.srv.RegisterOnShutdown(s.releaseHung)
	go func() {
		defer close(run.done)
		var err error
		if tlsCfg != nil {
			err = run.srv.ServeTLS(ln, "", "")
		} else {
			err = run.srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			run.serveErr = err
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = run.Close()
		case <-run.done:
		}
	}()
	return run, nil
}

// Done is closed when the server has stopped serving.
func (r *Running) Done() <-chan struct{} { return r.done }

// Err returns why serving stopped on its own, once Done is closed; nil
// after a Close.
func (r *Running) Err() error {
	select {
	case <-r.done:
		return r.serveErr
	default:
		return nil
	}
}

// Close stops accepting connections and waits (up to shutdownGrace) for
// requests in flight to finish, then closes what is left.
func (r *Running) Close() error {
	r.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := r.srv.Shutdown(ctx); err != nil {
			r.closeErr = errors.Join(fmt.Errorf("graceful shutdown failed: %w", err), r.srv.Close())
		}
		<-r.done
	})
	return r.closeErr
}

// urlHost turns a bound address into a host:port for URLs, replacing an
// unspecified address by the loopback one.
func urlHost(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		// Listening on all addresses (dual stack on Linux) includes
		// the IPv4 loopback.
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}
