// Package forwarder moves Falco events from NATS into Splunk SOAR: one case
// per incident, one artifact per alert, nothing lost and nothing doubled.
//
// Data flows one way: a source (JetStream consumer or core subscription)
// hands messages to workers; a worker parses a batch, assigns each alert to
// its incident's case, writes the batch to SOAR, and only then settles the
// messages (acknowledges them). Whatever SOAR cannot take for a passing
// reason is held and retried; whatever it can never take is kept as a dead
// letter.
package forwarder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// Forwarder is one forwarder process.
type Forwarder struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	client  *phantom.Client

	budget *budget // events in flight
	// caseCheckInterval is how long SOAR's word on a case id is trusted.
	caseCheckInterval time.Duration

	ready atomic.Bool // the source is consuming
	// probeErr is what the last check of SOAR found (nil: fine).
	probeErr atomic.Pointer[error]
	nc       atomic.Pointer[nats.Conn]
	pipe     atomic.Pointer[pipeline]
	// natsDialErr is the last error connecting to NATS.
	natsDialErr atomic.Pointer[error]
}

// New checks cfg and prepares a forwarder; Run starts it.
func New(cfg Config, log *slog.Logger) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, err := phantom.New(phantom.Config{
		BaseURL:            cfg.Phantom.BaseURL,
		Credentials:        credentials(cfg.Phantom),
		InsecureSkipVerify: !cfg.Phantom.VerifySSL,
		CAFile:             cfg.Phantom.CAFile,
		Timeout:            cfg.Phantom.Timeout,
		UserAgent:          "falco-phantom-forwarder",
		MaxConns:           cfg.MaxInFlight,
	})
	if err != nil {
		return nil, fmt.Errorf("SOAR client: %w", err)
	}
	return &Forwarder{cfg: cfg, log: log, metrics: NewMetrics(), client: client, budget: newBudget(maxInFlightBytes, cfg.MaxHeldEvents),
		caseCheckInterval: caseCheckInterval}, nil
}

func credentials(c PhantomConfig) phantom.Credentials {
	if c.UserFile == "" && c.PasswordFile == "" && c.TokenFile == "" {
		return phantom.StaticCredentials(c.Auth)
	}
	return &phantom.FileCredentials{UserFile: c.UserFile, PasswordFile: c.PasswordFile, TokenFile: c.TokenFile, Fallback: c.Auth}
}

// Metrics returns the forwarder's metrics.
func (f *Forwarder) Metrics() *Metrics { return f.metrics }

// Consuming reports whether the forwarder takes events from NATS (whether
// or not SOAR accepts them).
func (f *Forwarder) Consuming() bool {
	if f.cfg.NATS.Mode == ModeFunction {
		return f.ready.Load()
	}
	nc := f.nc.Load()
	return nc != nil && f.ready.Load() && nc.IsConnected()
}

// Ready returns nil when the forwarder consumes events and SOAR accepts
// them, and otherwise what is wrong.
func (f *Forwarder) Ready() error {
	nc := f.nc.Load()
	switch {
	case f.cfg.NATS.Mode == ModeFunction:
		if !f.ready.Load() {
			return errors.New("not serving function calls yet")
		}
	case nc == nil || !f.ready.Load():
		return errors.New("not consuming from NATS yet")
	case !nc.IsConnected():
		return fmt.Errorf("NATS connection is %s", nc.Status())
	}
	if p := f.pipe.Load(); p != nil {
		if err := p.Blocked(); err != nil {
			return err
		}
		if n, err := p.deadLetters.Held(); err != nil {
			return fmt.Errorf("%d dead letter(s) held, the dead-letter stream refuses them (valid alerts still flow): %w", n, err)
		}
	}
	if err := f.probeErr.Load(); err != nil && *err != nil && isBlocking(*err) {
		return *err
	}
	return nil
}

// Handler serves /healthz (alive), /readyz (Ready) and /metrics.
func (f *Forwarder) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := f.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(f.metrics.Registry, promhttp.HandlerOpts{}))
	return mux
}

// Run consumes events until ctx ends, then stops taking new ones, finishes
// the batches in flight (for at most DrainTimeout), gives back what it
// could not finish, and returns.
func (f *Forwarder) Run(ctx context.Context) error {
	cfg := f.cfg
	f.log.Info("starting forwarder", "mode", cfg.NATS.Mode, "nats", RedactURL(cfg.NATS.URL), "subject", cfg.NATS.Subject,
		"phantom", f.client.BaseURL(), "label", cfg.Phantom.Label, "auth", authKind(cfg.Phantom),
		"group_window", cfg.GroupWindow.String(), "workers", cfg.Workers, "batch_size", cfg.BatchSize, "max_in_flight", cfg.MaxInFlight, "max_held_events", cfg.MaxHeldEvents)
	if !cfg.Phantom.VerifySSL {
		f.log.Warn("TLS certificate verification of SOAR is OFF (VERIFY_SSL=false): anyone on the path can read and change what is sent")
	}
	stopServing, err := f.serveHealth(ctx)
	if err != nil {
		return err
	}
	defer stopServing()
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	go f.probe(probeCtx)

	src, nc, err := f.open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			f.log.Info("forwarder stopped before it consumed anything")
			return nil
		}
		return err
	}
	if nc != nil {
		defer nc.Close()
	}
	f.pipe.Store(src.pipe)
	err = f.consume(ctx, src)
	if nc != nil {
		if err := nc.Drain(); err != nil {
			f.log.Warn("NATS drain", "error", err)
		}
	}
	return err
}

// serveHealth serves Handler on cfg.Listen, unless it is empty or the
// function (in function mode) answers health and metrics itself.
func (f *Forwarder) serveHealth(ctx context.Context) (stop func(), err error) {
	if f.cfg.Listen == "" || f.cfg.NATS.Mode == ModeFunction {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", f.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for health and metrics on %s: %w", f.cfg.Listen, err)
	}
	srv := &http.Server{Handler: f.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx)
	}, nil
}

// open connects to NATS (except in function mode) and sets up the mode's
// source, waiting for NATS as long as it takes.
func (f *Forwarder) open(ctx context.Context) (*source, *nats.Conn, error) {
	if f.cfg.NATS.Mode == ModeFunction {
		return f.functionSource(), nil, nil
	}
	nc, err := f.connect()
	if err != nil {
		return nil, nil, err
	}
	f.nc.Store(nc)
	src, err := f.openSource(ctx, nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return src, nc, nil
}

// consume runs the workers, the dead-letter queue and the source until ctx
// ends or the source fails, then drains: the batches in flight get
// DrainTimeout to finish, and whatever is left is given back.
func (f *Forwarder) consume(ctx context.Context, src *source) error {
	cfg := f.cfg
	msgs := make(chan *Message, cfg.BatchSize*cfg.Workers)
	deliverCtx, cancelDeliver := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDeliver()
	var workers sync.WaitGroup
	q := newBatchQueue(msgs, cfg.BatchSize)
	for range cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			f.work(ctx, deliverCtx, src.pipe, q)
		}()
	}
	dlStop, dlDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(dlDone)
		src.pipe.deadLetters.run(deliverCtx, dlStop)
	}()
	leasesStop := make(chan struct{})
	defer close(leasesStop)
	go src.pipe.leases.keep(leasesStop)
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.run(ctx, msgs, &f.ready) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-srcDone:
	}
	f.ready.Store(false)
	f.log.Info("stopping: finishing events in flight", "timeout", cfg.DrainTimeout.String())
	stopTimer := time.AfterFunc(cfg.DrainTimeout, cancelDeliver)
	defer stopTimer.Stop()
	src.stop()
	if runErr != nil {
		// Workers also stop on ctx; make them stop for a source failure too.
		cancelDeliver()
	}
	workers.Wait()
	// The senders finish what they hold, or give it back when the drain
	// timeout ends deliverCtx.
	src.pipe.wait()
	// Nothing hands over dead letters any more: write what is held, give
	// back what cannot be.
	close(dlStop)
	<-dlDone
	if runErr == nil {
		// The JetStream source gives back what its client prefetched: let it
		// finish before the connection goes.
		select {
		case runErr = <-srcDone:
		case <-time.After(5 * time.Second):
			f.log.Warn("the event source did not stop within 5s; what it still held comes back after AckWait")
		}
	}
	f.log.Info("forwarder stopped", "given_back", giveBackQueued(msgs))
	return runErr
}

// giveBackQueued gives back the messages still waiting for a worker.
func giveBackQueued(msgs <-chan *Message) int {
	for given := 0; ; given++ {
		select {
		case m := <-msgs:
			m.nak()
		default:
			return given
		}
	}
}

// work takes batches from q until ctx ends and processes them.
func (f *Forwarder) work(ctx, deliverCtx context.Context, p *pipeline, q *batchQueue) {
	for {
		batch, prev, grouped := q.take(ctx, deliverCtx)
		if batch == nil {
			return
		}
		p.process(deliverCtx, batch, prev, grouped)
	}
}

// batchQueue hands batches to the workers in the order messages arrived,
// with a turn for grouping: each batch gets the channel the previous batch
// closes once its alerts are grouped.
type batchQueue struct {
	msgs <-chan *Message
	size int

	mu   sync.Mutex
	last chan struct{} // closed when the last batch taken is grouped
}

func newBatchQueue(msgs <-chan *Message, size int) *batchQueue {
	last := make(chan struct{})
	close(last)
	return &batchQueue{msgs: msgs, size: size, last: last}
}

// take waits for a message and returns it with whatever else is already
// waiting, up to the batch size: the first event is never held back
// waiting for others. batch is nil when ctx or deliverCtx ended. The
// caller must close grouped once it has grouped the batch.
func (q *batchQueue) take(ctx, deliverCtx context.Context) (batch []*Message, prev <-chan struct{}, grouped chan<- struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if ctx.Err() != nil || deliverCtx.Err() != nil {
		return nil, nil, nil
	}
	select {
	case m := <-q.msgs:
		batch = append(make([]*Message, 0, q.size), m)
	case <-ctx.Done():
		return nil, nil, nil
	case <-deliverCtx.Done():
		return nil, nil, nil
	}
fill:
	for len(batch) < q.size {
		select {
		case m := <-q.msgs:
			batch = append(batch, m)
		default:
			break fill
		}
	}
	turn := make(chan struct{})
	prev, q.last = q.last, turn
	return batch, prev, turn
}

func (f *Forwarder) connect() (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("falco-phantom-forwarder"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			f.log.Warn("NATS disconnected; reconnecting", "error", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			f.log.Info("NATS reconnected", "server", RedactURL(c.ConnectedUrl()))
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			// Why the server cannot be reached (connection refused, no such
			// host...), for the messages that would only say "timeout".
			f.natsDialErr.Store(&err)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			if errors.Is(err, nats.ErrSlowConsumer) && f.cfg.NATS.Mode == ModeJetStream {
				// The pull buffer was full, as when SOAR is slow: what was
				// dropped is unacknowledged and comes back after AckWait.
				f.log.Warn("NATS dropped messages the forwarder had no room for; JetStream redelivers them after AckWait",
					"error", err, "subscription", subject, "ack_wait", f.cfg.NATS.AckWait.String())
				return
			}
			f.log.Error("NATS error", "error", err, "subscription", subject)
		}),
	}
	if f.cfg.NATS.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(f.cfg.NATS.CredsFile))
	}
	nc, err := nats.Connect(f.cfg.NATS.URL, opts...)
	if err != nil {
		return nil, ConnectError(f.cfg.NATS.URL, err)
	}
	return nc, nil
}

func authKind(c PhantomConfig) string {
	switch {
	case c.TokenFile != "":
		return "token from file"
	case c.PasswordFile != "" || c.UserFile != "":
		return "user and password from files"
	default:
		return c.Auth.String()
	}
}
