package forwarder

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// Mode is how the forwarder receives events.
type Mode string

const (
	// ModeJetStream stores events in a JetStream stream and consumes them with
	// a durable consumer, acknowledging each only once SOAR holds it. Nothing
	// is lost while SOAR or the forwarder is down. The default.
	ModeJetStream Mode = "jetstream"
	// ModeCore subscribes with a plain NATS queue subscription, for servers
	// without JetStream. Events that arrive while no forwarder runs, or that
	// are in memory when it is killed, are lost.
	ModeCore Mode = "core"
)

// Config is everything the forwarder needs. Secrets are only ever read from
// the environment or from files, never from flags, so that they cannot be
// seen in the process list.
type Config struct {
	Phantom PhantomConfig
	NATS    NATSConfig

	// GroupWindow is how long after the first alert of an incident further
	// alerts of the same rule in the same container join its case. 0 opens
	// one case per alert.
	GroupWindow time.Duration
	// BatchSize is the most events sent to SOAR in one request.
	BatchSize int
	// Workers is how many batches are parsed and grouped at once.
	Workers int
	// MaxInFlight bounds the requests to SOAR in flight at once; fewer
	// are while SOAR pushes back.
	MaxInFlight int
	// MaxHeldEvents bounds the events taken from NATS and not settled yet
	// (parsed, waiting for SOAR); the rest of a backlog waits in
	// JetStream. More lets one request carry more alerts of a case while
	// SOAR is slow and there are many cases at once, for more memory:
	// docs/benchmarks.md has figures.
	MaxHeldEvents int
	// Listen is the address of the health and metrics endpoints; "" turns
	// them off.
	Listen string
	// DrainTimeout bounds how long a SIGTERM waits for events in flight.
	DrainTimeout time.Duration
	// FunctionTimeout bounds how long a function call (function mode)
	// waits for SOAR before it is answered 503. A Kubeless trigger that
	// hears 503 logs a failure; the event may still be stored later
	// (stores are idempotent, a resend does no harm).
	FunctionTimeout time.Duration
}

// PhantomConfig says how to reach SOAR.
type PhantomConfig struct {
	BaseURL      string
	Auth         phantom.Auth // from PHANTOM_USER, PHANTOM_PASSWORD, PHANTOM_TOKEN
	UserFile     string
	PasswordFile string
	TokenFile    string
	CAFile       string
	VerifySSL    bool
	Label        string
	Timeout      time.Duration
}

// NATSConfig says where events come from.
type NATSConfig struct {
	URL     string
	Subject string
	Mode    Mode
	// CredsFile is a NATS credentials (JWT + nkey) file; optional.
	CredsFile string
	// Stream captures StreamSubjects so falcosidekick's plain publishes are
	// stored. It is created when missing and used as it is otherwise.
	Stream         string
	StreamSubjects []string
	StreamMaxAge   time.Duration
	StreamReplicas int
	// Consumer is the durable consumer all replicas share.
	Consumer string
	// AckWait is how long NATS waits for an acknowledgement before it
	// redelivers; the forwarder signals progress while it retries.
	AckWait time.Duration
	// MaxAckPending bounds the events one consumer holds unacknowledged.
	MaxAckPending int
	// Queue is the queue group of core mode.
	Queue string
	// DeadLetterSubject is the prefix of dead-letter subjects: an event
	// that can never be delivered goes to DeadLetterSubject + "." + reason.
	DeadLetterSubject string
	// DeadLetterStream stores dead letters in JetStream mode.
	DeadLetterStream string
	// GroupBucket is the JetStream key-value bucket in which replicas agree
	// on incident grouping.
	GroupBucket string
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		Phantom: PhantomConfig{VerifySSL: true, Label: "events", Timeout: 30 * time.Second},
		NATS: NATSConfig{
			URL: nats.DefaultURL, Subject: "falco.>", Mode: ModeJetStream,
			Stream: "FALCO", StreamSubjects: []string{"falco.>"}, StreamMaxAge: 72 * time.Hour, StreamReplicas: 1,
			Consumer: "falco-phantom", AckWait: 30 * time.Second, MaxAckPending: 4096, Queue: "falco-phantom",
			DeadLetterSubject: "falcophantom.deadletter", DeadLetterStream: "FALCO_PHANTOM_DEADLETTER",
			GroupBucket: "falco_phantom_groups",
		},
		GroupWindow:     5 * time.Minute,
		BatchSize:       256,
		Workers:         2,
		MaxInFlight:     32,
		MaxHeldEvents:   1024,
		Listen:          ":8081",
		DrainTimeout:    20 * time.Second,
		FunctionTimeout: 25 * time.Second,
	}
}

// Validate checks the configuration and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	if _, err := phantom.ParseBaseURL(c.Phantom.BaseURL); err != nil {
		errs = append(errs, err)
	}
	hasAuth := !c.Phantom.Auth.Empty() || c.Phantom.UserFile != "" || c.Phantom.PasswordFile != "" || c.Phantom.TokenFile != ""
	if !hasAuth {
		errs = append(errs, errors.New("no SOAR credentials: set PHANTOM_USER and PHANTOM_PASSWORD, or PHANTOM_TOKEN (or the *_FILE variants)"))
	}
	if strings.TrimSpace(c.Phantom.Label) == "" {
		errs = append(errs, errors.New("PHANTOM_LABEL is empty"))
	}
	switch c.NATS.Mode {
	case ModeJetStream, ModeCore:
	case ModeFunction:
		if c.Listen == "" {
			errs = append(errs, errors.New("function mode needs an address to listen on (--listen, default :8080)"))
		}
	default:
		errs = append(errs, fmt.Errorf("mode %q: want jetstream, core or function", c.NATS.Mode))
	}
	if err := falco.ValidSubject(c.NATS.Subject, true); err != nil {
		errs = append(errs, fmt.Errorf("NATS subject: %w", err))
	}
	if c.NATS.Mode == ModeJetStream {
		if len(c.NATS.StreamSubjects) == 0 {
			errs = append(errs, errors.New("stream subjects are empty"))
		}
		for _, s := range c.NATS.StreamSubjects {
			if err := falco.ValidSubject(s, true); err != nil {
				errs = append(errs, fmt.Errorf("stream subject: %w", err))
			}
		}
		if c.NATS.Stream == "" || strings.ContainsAny(c.NATS.Stream, ". *>") {
			errs = append(errs, fmt.Errorf("stream name %q: must be non-empty without spaces, dots, * or >", c.NATS.Stream))
		}
		if c.NATS.Consumer == "" || strings.ContainsAny(c.NATS.Consumer, ". *>") {
			errs = append(errs, fmt.Errorf("consumer name %q: must be non-empty without spaces, dots, * or >", c.NATS.Consumer))
		}
		if c.NATS.StreamReplicas < 1 || c.NATS.StreamReplicas > 5 {
			errs = append(errs, fmt.Errorf("stream replicas %d: want 1 to 5", c.NATS.StreamReplicas))
		}
	}
	if err := falco.ValidSubject(c.NATS.DeadLetterSubject, false); err != nil {
		errs = append(errs, fmt.Errorf("dead-letter subject: %w", err))
	} else {
		for _, s := range append([]string{c.NATS.Subject}, c.NATS.StreamSubjects...) {
			if falco.SubjectCovers(s, c.NATS.DeadLetterSubject+".x") {
				errs = append(errs, fmt.Errorf("dead-letter subject %q is inside %q: dead letters would loop back", c.NATS.DeadLetterSubject, s))
			}
		}
	}
	if c.GroupWindow < 0 {
		errs = append(errs, errors.New("group window must not be negative"))
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		errs = append(errs, fmt.Errorf("batch size %d: want 1 to 10000", c.BatchSize))
	}
	if c.Workers < 1 || c.Workers > 64 {
		errs = append(errs, fmt.Errorf("workers %d: want 1 to 64", c.Workers))
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 1024 {
		errs = append(errs, fmt.Errorf("max in flight %d: want 1 to 1024", c.MaxInFlight))
	}
	if c.MaxHeldEvents < c.BatchSize || c.MaxHeldEvents > 1<<20 {
		errs = append(errs, fmt.Errorf("max held events %d: want the batch size (%d) to 1048576", c.MaxHeldEvents, c.BatchSize))
	}
	return errors.Join(errs...)
}

// ConnectError is the error of a failed connection to the NATS servers at
// urls, safe to show: the URLs are redacted, and a URL the client could not
// parse is not quoted (the parser's error would quote it, password and all).
func ConnectError(urls string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = errors.New("the URL is not valid (want nats://host:4222, comma separated for several servers)")
	}
	return fmt.Errorf("connect to NATS %s: %w", RedactURL(urls), err)
}

// RedactURL removes credentials from NATS URLs before they are shown. A
// list is split only where a new URL begins (a comma followed by a scheme,
// as in "nats://a:4222,nats://b:4222"): a comma can also be part of a
// password. In each URL, everything up to its last "@" is redacted,
// whether it parses or not, and with or without a scheme.
func RedactURL(raw string) string {
	var out []string
	for _, part := range splitURLs(raw) {
		part = strings.TrimSpace(part)
		scheme, rest, ok := strings.Cut(part, "://")
		if !ok {
			scheme, rest = "", part
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = "redacted@" + rest[at+1:]
		}
		if ok {
			rest = scheme + "://" + rest
		}
		out = append(out, rest)
	}
	return strings.Join(out, ",")
}

// splitURLs splits a comma-separated list of URLs at the commas that are
// followed by a scheme ("nats://", "tls://", ...), after optional spaces.
func splitURLs(raw string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(raw); i++ {
		if raw[i] == ',' && startsWithScheme(strings.TrimLeft(raw[i+1:], " \t")) {
			parts = append(parts, raw[start:i])
			start = i + 1
		}
	}
	return append(parts, raw[start:])
}

// startsWithScheme reports whether s begins with "scheme://".
func startsWithScheme(s string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return false
	}
	for i, c := range scheme {
		letter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}
