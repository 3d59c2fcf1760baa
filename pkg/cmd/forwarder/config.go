package forwarder

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	fw "github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// BindFlags registers the forwarder's non-secret settings in cfg as flags
// whose defaults come from the environment (getenv), so that a flag
// overrides a variable and a variable overrides the built-in default. The
// variables are those the original function read (PHANTOM_BASE_URL, ...).
// Secrets come from the environment or files only. Errors in variables
// are collected; the returned function reports them after parsing and
// completes what depends on several flags.
func BindFlags(cfg *fw.Config, fs *pflag.FlagSet, getenv func(string) string) func() error {
	var errs []error
	str := func(key, def string) string { return input.Env(getenv, key, def) }
	dur := func(key string, def time.Duration) time.Duration {
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
	num := func(key string, def int) int {
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
	verify := cfg.Phantom.VerifySSL
	if v := getenv("VERIFY_SSL"); v != "" {
		b, err := input.Bool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("VERIFY_SSL=%q: %w", v, err))
		} else {
			verify = b
		}
	}
	cfg.Phantom.Auth = phantom.Auth{User: getenv("PHANTOM_USER"), Password: getenv("PHANTOM_PASSWORD"), Token: getenv("PHANTOM_TOKEN")}

	p, n := &cfg.Phantom, &cfg.NATS
	fs.StringVar(&p.BaseURL, "phantom-url", str("PHANTOM_BASE_URL", p.BaseURL), "SOAR base URL, e.g. https://soar.example.com [PHANTOM_BASE_URL]")
	fs.StringVar(&p.UserFile, "phantom-user-file", str("PHANTOM_USER_FILE", ""), "file holding the SOAR user name [PHANTOM_USER_FILE]")
	fs.StringVar(&p.PasswordFile, "phantom-password-file", str("PHANTOM_PASSWORD_FILE", ""), "file holding the SOAR password [PHANTOM_PASSWORD_FILE]")
	fs.StringVar(&p.TokenFile, "phantom-token-file", str("PHANTOM_TOKEN_FILE", ""), "file holding a SOAR automation token [PHANTOM_TOKEN_FILE]")
	fs.StringVar(&p.CAFile, "phantom-ca-file", str("PHANTOM_CA_FILE", ""), "PEM file of CAs to trust for SOAR's certificate [PHANTOM_CA_FILE]")
	fs.BoolVar(&p.VerifySSL, "verify-ssl", verify, "verify SOAR's TLS certificate [VERIFY_SSL]")
	fs.StringVar(&p.Label, "phantom-label", str("PHANTOM_LABEL", p.Label), "label of the containers created; it must exist in SOAR [PHANTOM_LABEL]")
	fs.DurationVar(&p.Timeout, "phantom-timeout", dur("PHANTOM_TIMEOUT", p.Timeout), "timeout of each SOAR request [PHANTOM_TIMEOUT]")

	fs.StringVar(&n.URL, "nats-url", str("NATS_URL", n.URL), "NATS server URL(s), comma separated [NATS_URL]")
	// The default shown by --help comes from the environment: never with
	// its credentials.
	fs.Lookup("nats-url").DefValue = fw.RedactURL(n.URL)
	fs.StringVar(&n.Subject, "nats-subject", str("NATS_SUBJECT", n.Subject), "subject to consume; falco.*.* works too [NATS_SUBJECT]")
	mode := string(n.Mode)
	fs.StringVar(&mode, "mode", str("NATS_MODE", mode), "jetstream (durable, default), core (plain subscription) or function (Kubeless runtime: HTTP on --listen, default :8080) [NATS_MODE]")
	fs.StringVar(&n.CredsFile, "nats-creds-file", str("NATS_CREDS_FILE", ""), "NATS credentials file [NATS_CREDS_FILE]")
	fs.StringVar(&n.Stream, "stream", str("NATS_STREAM", n.Stream), "JetStream stream holding Falco events [NATS_STREAM]")
	subjects := str("NATS_STREAM_SUBJECTS", strings.Join(n.StreamSubjects, ","))
	fs.StringVar(&subjects, "stream-subjects", subjects, "subjects the stream captures when it is created [NATS_STREAM_SUBJECTS]")
	fs.IntVar(&n.StreamReplicas, "stream-replicas", num("NATS_STREAM_REPLICAS", n.StreamReplicas), "replicas of the stream when it is created (3 on a NATS cluster) [NATS_STREAM_REPLICAS]")
	fs.DurationVar(&n.StreamMaxAge, "stream-max-age", n.StreamMaxAge, "how long the stream keeps events when it is created")
	fs.StringVar(&n.Consumer, "consumer", str("NATS_CONSUMER", n.Consumer), "durable consumer name shared by all replicas [NATS_CONSUMER]")
	fs.StringVar(&n.Queue, "queue", str("NATS_QUEUE", n.Queue), "queue group in core mode [NATS_QUEUE]")
	fs.StringVar(&n.DeadLetterSubject, "dead-letter-subject", str("DEAD_LETTER_SUBJECT", n.DeadLetterSubject), "prefix of the subjects undeliverable events go to [DEAD_LETTER_SUBJECT]")

	fs.DurationVar(&cfg.GroupWindow, "group-window", dur("GROUP_WINDOW", cfg.GroupWindow), "alerts of one rule in one container within this time of the first share a case; 0 = a case per alert [GROUP_WINDOW]")
	fs.IntVar(&cfg.BatchSize, "batch-size", num("BATCH_SIZE", cfg.BatchSize), "most events per SOAR request [BATCH_SIZE]")
	fs.IntVar(&cfg.Workers, "workers", num("WORKERS", cfg.Workers), "batches parsed and grouped at once [WORKERS]")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", num("MAX_IN_FLIGHT", cfg.MaxInFlight), "most requests to SOAR in flight at once; fewer while SOAR pushes back (429, 503, timeouts) [MAX_IN_FLIGHT]")
	fs.IntVar(&cfg.MaxHeldEvents, "max-held-events", num("MAX_HELD_EVENTS", cfg.MaxHeldEvents), "most events taken from NATS and not yet in SOAR; more is faster with many cases and a slow SOAR, and takes more memory [MAX_HELD_EVENTS]")
	fs.StringVar(&cfg.Listen, "listen", str("LISTEN_ADDR", cfg.Listen), "address of /healthz, /readyz and /metrics; empty turns them off [LISTEN_ADDR]")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "how long SIGTERM waits for events in flight")
	fs.DurationVar(&cfg.FunctionTimeout, "function-timeout", cfg.FunctionTimeout, "function mode: how long a call waits for SOAR before it is answered 503")

	return func() error {
		cfg.NATS.Mode = fw.Mode(mode)
		if cfg.NATS.Mode == fw.ModeFunction && !fs.Changed("listen") && getenv("LISTEN_ADDR") == "" {
			// The Kubeless runtime contract: port 8080, or FUNC_PORT.
			cfg.Listen = ":" + str("FUNC_PORT", "8080")
		}
		cfg.NATS.StreamSubjects = input.List(subjects)
		return errors.Join(errs...)
	}
}
