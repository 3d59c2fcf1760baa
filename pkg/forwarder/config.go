package forwarder

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

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
	// Workers is how many batches are in flight at once.
	Workers int
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
		Listen:          ":8081",
		DrainTimeout:    20 * time.Second,
		FunctionTimeout: 25 * time.Second,
	}
}

// EnvVars lists the environment variables the forwarder reads, for help texts.
var EnvVars = []string{
	"PHANTOM_BASE_URL", "PHANTOM_USER", "PHANTOM_PASSWORD", "PHANTOM_TOKEN", "PHANTOM_USER_FILE",
	"PHANTOM_PASSWORD_FILE", "PHANTOM_TOKEN_FILE", "PHANTOM_CA_FILE", "VERIFY_SSL", "PHANTOM_LABEL",
	"PHANTOM_TIMEOUT", "NATS_URL", "NATS_SUBJECT", "NATS_MODE", "NATS_CREDS_FILE", "NATS_STREAM",
	"NATS_STREAM_SUBJECTS", "NATS_STREAM_REPLICAS", "NATS_CONSUMER", "NATS_QUEUE", "DEAD_LETTER_SUBJECT",
	"GROUP_WINDOW", "BATCH_SIZE", "WORKERS", "LISTEN_ADDR",
}

// BindFlags registers the non-secret settings as flags whose defaults come
// from the environment (getenv), so that a flag overrides a variable and a
// variable overrides the built-in default. Errors in variables are
// collected and returned by the second result's function after parsing.
func (c *Config) BindFlags(fs *pflag.FlagSet, getenv func(string) string) func() error {
	var errs []error
	envStr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	envDur := func(key string, def time.Duration) time.Duration {
		v := getenv(key)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not a duration (e.g. 30s, 5m)", key, v))
			return def
		}
		return d
	}
	envInt := func(key string, def int) int {
		v := getenv(key)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not a whole number", key, v))
			return def
		}
		return n
	}
	verify := c.Phantom.VerifySSL
	if v := getenv("VERIFY_SSL"); v != "" {
		b, err := ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("VERIFY_SSL=%q: %w", v, err))
		} else {
			verify = b
		}
	}
	c.Phantom.Auth = phantom.Auth{User: getenv("PHANTOM_USER"), Password: getenv("PHANTOM_PASSWORD"), Token: getenv("PHANTOM_TOKEN")}

	p, n := &c.Phantom, &c.NATS
	fs.StringVar(&p.BaseURL, "phantom-url", envStr("PHANTOM_BASE_URL", p.BaseURL), "SOAR base URL, e.g. https://soar.example.com [PHANTOM_BASE_URL]")
	fs.StringVar(&p.UserFile, "phantom-user-file", envStr("PHANTOM_USER_FILE", ""), "file holding the SOAR user name [PHANTOM_USER_FILE]")
	fs.StringVar(&p.PasswordFile, "phantom-password-file", envStr("PHANTOM_PASSWORD_FILE", ""), "file holding the SOAR password [PHANTOM_PASSWORD_FILE]")
	fs.StringVar(&p.TokenFile, "phantom-token-file", envStr("PHANTOM_TOKEN_FILE", ""), "file holding a SOAR automation token [PHANTOM_TOKEN_FILE]")
	fs.StringVar(&p.CAFile, "phantom-ca-file", envStr("PHANTOM_CA_FILE", ""), "PEM file of CAs to trust for SOAR's certificate [PHANTOM_CA_FILE]")
	fs.BoolVar(&p.VerifySSL, "verify-ssl", verify, "verify SOAR's TLS certificate [VERIFY_SSL]")
	fs.StringVar(&p.Label, "phantom-label", envStr("PHANTOM_LABEL", p.Label), "label of the containers created; it must exist in SOAR [PHANTOM_LABEL]")
	fs.DurationVar(&p.Timeout, "phantom-timeout", envDur("PHANTOM_TIMEOUT", p.Timeout), "timeout of each SOAR request [PHANTOM_TIMEOUT]")

	fs.StringVar(&n.URL, "nats-url", envStr("NATS_URL", n.URL), "NATS server URL(s), comma separated [NATS_URL]")
	// The default shown by --help comes from the environment: never with
	// its credentials.
	fs.Lookup("nats-url").DefValue = RedactURL(n.URL)
	fs.StringVar(&n.Subject, "nats-subject", envStr("NATS_SUBJECT", n.Subject), "subject to consume; falco.*.* works too [NATS_SUBJECT]")
	mode := string(n.Mode)
	fs.StringVar(&mode, "mode", envStr("NATS_MODE", mode), "jetstream (durable, default), core (plain subscription) or function (Kubeless runtime: HTTP on --listen, default :8080) [NATS_MODE]")
	fs.StringVar(&n.CredsFile, "nats-creds-file", envStr("NATS_CREDS_FILE", ""), "NATS credentials file [NATS_CREDS_FILE]")
	fs.StringVar(&n.Stream, "stream", envStr("NATS_STREAM", n.Stream), "JetStream stream holding Falco events [NATS_STREAM]")
	subjects := envStr("NATS_STREAM_SUBJECTS", strings.Join(n.StreamSubjects, ","))
	fs.StringVar(&subjects, "stream-subjects", subjects, "subjects the stream captures when it is created [NATS_STREAM_SUBJECTS]")
	fs.IntVar(&n.StreamReplicas, "stream-replicas", envInt("NATS_STREAM_REPLICAS", n.StreamReplicas), "replicas of the stream when it is created (3 on a NATS cluster) [NATS_STREAM_REPLICAS]")
	fs.DurationVar(&n.StreamMaxAge, "stream-max-age", n.StreamMaxAge, "how long the stream keeps events when it is created")
	fs.StringVar(&n.Consumer, "consumer", envStr("NATS_CONSUMER", n.Consumer), "durable consumer name shared by all replicas [NATS_CONSUMER]")
	fs.StringVar(&n.Queue, "queue", envStr("NATS_QUEUE", n.Queue), "queue group in core mode [NATS_QUEUE]")
	fs.StringVar(&n.DeadLetterSubject, "dead-letter-subject", envStr("DEAD_LETTER_SUBJECT", n.DeadLetterSubject), "prefix of the subjects undeliverable events go to [DEAD_LETTER_SUBJECT]")

	fs.DurationVar(&c.GroupWindow, "group-window", envDur("GROUP_WINDOW", c.GroupWindow), "alerts of one rule in one container within this time of the first share a case; 0 = a case per alert [GROUP_WINDOW]")
	fs.IntVar(&c.BatchSize, "batch-size", envInt("BATCH_SIZE", c.BatchSize), "most events per SOAR request [BATCH_SIZE]")
	fs.IntVar(&c.Workers, "workers", envInt("WORKERS", c.Workers), "batches in flight at once [WORKERS]")
	fs.StringVar(&c.Listen, "listen", envStr("LISTEN_ADDR", c.Listen), "address of /healthz, /readyz and /metrics; empty turns them off [LISTEN_ADDR]")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "how long SIGTERM waits for events in flight")
	fs.DurationVar(&c.FunctionTimeout, "function-timeout", c.FunctionTimeout, "function mode: how long a call waits for SOAR before it is answered 503")

	return func() error {
		c.NATS.Mode = Mode(mode)
		if c.NATS.Mode == ModeFunction && !fs.Changed("listen") && getenv("LISTEN_ADDR") == "" {
			// The Kubeless runtime contract: port 8080, or FUNC_PORT.
			c.Listen = ":" + envStr("FUNC_PORT", "8080")
		}
		c.NATS.StreamSubjects = splitList(subjects)
		return errors.Join(errs...)
	}
}

// ParseBool reads true/false the way people write them in environment
// variables: true, false, 1, 0, yes, no, on, off, in any letter case.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on", "y", "t":
		return true, nil
	case "false", "0", "no", "off", "n", "f":
		return false, nil
	}
	return false, errors.New("want true or false")
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
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
	if err := validSubject(c.NATS.Subject, true); err != nil {
		errs = append(errs, fmt.Errorf("NATS subject: %w", err))
	}
	if c.NATS.Mode == ModeJetStream {
		if len(c.NATS.StreamSubjects) == 0 {
			errs = append(errs, errors.New("stream subjects are empty"))
		}
		for _, s := range c.NATS.StreamSubjects {
			if err := validSubject(s, true); err != nil {
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
	if err := validSubject(c.NATS.DeadLetterSubject, false); err != nil {
		errs = append(errs, fmt.Errorf("dead-letter subject: %w", err))
	} else {
		for _, s := range append([]string{c.NATS.Subject}, c.NATS.StreamSubjects...) {
			if subjectCovers(s, c.NATS.DeadLetterSubject+".x") {
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
	return errors.Join(errs...)
}

// validSubject checks a NATS subject; wildcards are allowed when wild is true.
func validSubject(s string, wild bool) error {
	if s == "" {
		return errors.New("empty")
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return fmt.Errorf("%q has an empty token", s)
		case strings.ContainsAny(t, " \t\r\n"):
			return fmt.Errorf("%q contains white space", s)
		case (t == "*" || t == ">") && !wild:
			return fmt.Errorf("%q must not contain wildcards", s)
		case t == ">" && i != len(tokens)-1:
			return fmt.Errorf("%q: > must be the last token", s)
		case t != "*" && t != ">" && strings.ContainsAny(t, "*>"):
			return fmt.Errorf("%q: wildcards must be whole tokens", s)
		}
	}
	return nil
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
