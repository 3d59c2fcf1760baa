package mockphantom

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Environment variables read by the command.
const (
	envUser     = "MOCKPHANTOM_USER"
	envPassword = "MOCKPHANTOM_PASSWORD"
	envToken    = "MOCKPHANTOM_TOKEN"
)

// Run is the mockphantom command. args excludes the program name. It
// serves until ctx is done, then shuts down gracefully and returns nil.
// Logs go to stderr; --help goes to stdout.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, args, cliEnv{getenv: os.Getenv}, stdout, stderr)
}

// cliEnv is what the command takes from its surroundings; tests replace it.
type cliEnv struct {
	getenv func(string) string
	ready  func(*Running) // called once the server is listening, if set
}

// cliOptions are the command's flags.
type cliOptions struct {
	listen, db                 string
	user, password, token      string
	passwordFile, tokenFile    string
	insecureNoAuth             bool
	labels                     stringList
	duplicateStatus            int
	maxBodyBytes               int64
	tlsSelfSigned              bool
	tlsHosts, tlsCAOut         string
	tlsCert, tlsKey            string
	faultLatency, faultDownFor time.Duration
	faultErrorRate             float64
	faultTimeoutRate           float64
	faultSeed                  uint64
	logFormat, logLevel        string
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func newFlagSet(o *cliOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("mockphantom", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.db, "db", "", "SQLite database `file`, created if missing (required)")
	fs.StringVar(&o.user, "user", "admin", "user name for HTTP basic auth (or "+envUser+")")
	fs.StringVar(&o.password, "password", "", "password for HTTP basic auth; visible in the process list, prefer --password-file or "+envPassword)
	fs.StringVar(&o.passwordFile, "password-file", "", "read the password from `file`")
	fs.StringVar(&o.token, "token", "", "API token for the ph-auth-token header; visible in the process list, prefer --token-file or "+envToken)
	fs.StringVar(&o.tokenFile, "token-file", "", "read the API token from `file`")
	fs.BoolVar(&o.insecureNoAuth, "insecure-no-auth", false, "accept requests without credentials")
	fs.Var(&o.labels, "label", "a container label that exists (repeatable; default events)")
	fs.IntVar(&o.duplicateStatus, "duplicate-status", DefaultDuplicateStatus, "HTTP status of duplicate answers")
	fs.Int64Var(&o.maxBodyBytes, "max-body-bytes", DefaultMaxBodyBytes, "largest accepted request body")
	fs.BoolVar(&o.tlsSelfSigned, "tls-self-signed", false, "serve HTTPS with an ephemeral CA and certificate")
	fs.StringVar(&o.tlsHosts, "tls-hosts", "127.0.0.1,localhost", "comma-separated host names and IPs of the self-signed certificate")
	fs.StringVar(&o.tlsCAOut, "tls-ca-out", "", "write the self-signed CA certificate (PEM) to `file` for clients to trust")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with this certificate `file` (PEM)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "private key `file` (PEM) of --tls-cert")
	fs.DurationVar(&o.faultLatency, "fault-latency", 0, "latency added to every /rest request")
	fs.Float64Var(&o.faultErrorRate, "fault-error-rate", 0, "share (0..1) of /rest requests answered 503")
	fs.Float64Var(&o.faultTimeoutRate, "fault-timeout-rate", 0, "share (0..1) of /rest requests that hang until the client gives up")
	fs.DurationVar(&o.faultDownFor, "fault-down-for", 0, "answer every /rest request 503 for this long after start")
	fs.Uint64Var(&o.faultSeed, "fault-seed", 0, "seed of the fault injection's random source (0: random)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug (one line per request), info, warn or error")
	return fs
}

func run(ctx context.Context, args []string, env cliEnv, stdout, stderr io.Writer) error {
	var o cliOptions
	fs := newFlagSet(&o)
	fs.SetOutput(io.Discard) // errors are returned, usage printed on request
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, stdout)
			return nil
		}
		return fmt.Errorf("%w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	}
	if err := o.complete(fs, env, stderr); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return err
	}
	logger, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return err
	}

	s, err := New(ctx, Config{
		DBPath:          o.db,
		User:            o.basicUser(),
		Password:        o.password,
		Token:           o.token,
		InsecureNoAuth:  o.insecureNoAuth,
		Labels:          o.labels,
		DuplicateStatus: o.duplicateStatus,
		MaxBodyBytes:    o.maxBodyBytes,
		FaultSeed:       o.faultSeed,
		Logger:          logger,
	})
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	f := Faults{Latency: o.faultLatency, ErrorRate: o.faultErrorRate, TimeoutRate: o.faultTimeoutRate}
	if o.faultDownFor > 0 {
		f.DownUntil = time.Now().Add(o.faultDownFor)
	}
	s.SetFaults(f)

	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return err
	}
	running, err := Serve(ctx, s, o.listen, tlsCfg)
	if err != nil {
		return err
	}
	logger.Info("mockphantom listening", "url", running.URL, "db", o.db, "auth", o.authMode(),
		"labels", strings.Join(s.cfg.Labels, ","), "version", Version)
	if env.ready != nil {
		env.ready(running)
	}

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case <-running.Done():
	}
	if err := running.Close(); err != nil {
		return err
	}
	if err := running.Err(); err != nil {
		return fmt.Errorf("server stopped: %w", err)
	}
	return s.Close()
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, `mockphantom: a mock Splunk SOAR (Phantom) REST API backed by SQLite.

Usage: mockphantom --db FILE [--user U] (--password-file F | --token-file F | --insecure-no-auth) [flags]

Secrets can also come from %s, %s and %s.

Flags:
`, envUser, envPassword, envToken)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// complete fills the secrets from files and the environment and warns
// about secrets given on the command line.
func (o *cliOptions) complete(fs *flag.FlagSet, env cliEnv, stderr io.Writer) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["user"] {
		if u := env.getenv(envUser); u != "" {
			o.user = u
		}
	}
	var err error
	if o.password, err = secret("password", o.password, set["password"], o.passwordFile, env.getenv(envPassword), stderr); err != nil {
		return err
	}
	if o.token, err = secret("token", o.token, set["token"], o.tokenFile, env.getenv(envToken), stderr); err != nil {
		return err
	}
	return nil
}

// secret picks a secret from --name, --name-file or the environment, in
// that order, and refuses two sources on the command line.
func secret(name, flagValue string, flagSet bool, file, envValue string, stderr io.Writer) (string, error) {
	switch {
	case flagSet && file != "":
		return "", fmt.Errorf("use only one of --%s and --%s-file", name, name)
	case flagSet:
		fmt.Fprintf(stderr, "mockphantom: warning: --%s is visible to other users in the process list; prefer --%s-file or the environment\n", name, name)
		return flagValue, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("failed to read --%s-file: %w", name, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("--%s-file %s is empty", name, file)
		}
		return v, nil
	}
	return envValue, nil
}

func (o *cliOptions) validate() error {
	if o.db == "" {
		return errors.New("--db is required: the SQLite file that keeps the cases")
	}
	if !o.insecureNoAuth && o.password == "" && o.token == "" {
		return fmt.Errorf("no credentials: set a password (--password-file or %s) or a token (--token-file or %s), or pass --insecure-no-auth to accept anyone", envPassword, envToken)
	}
	if o.password != "" && o.user == "" {
		return fmt.Errorf("a password needs a user name (--user or %s)", envUser)
	}
	if o.tlsSelfSigned && (o.tlsCert != "" || o.tlsKey != "") {
		return errors.New("--tls-self-signed and --tls-cert/--tls-key exclude each other")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if o.tlsCAOut != "" && !o.tlsSelfSigned {
		return errors.New("--tls-ca-out needs --tls-self-signed")
	}
	for name, rate := range map[string]float64{"--fault-error-rate": o.faultErrorRate, "--fault-timeout-rate": o.faultTimeoutRate} {
		if rate < 0 || rate > 1 {
			return fmt.Errorf("%s %v is not between 0 and 1", name, rate)
		}
	}
	if o.faultLatency < 0 || o.faultDownFor < 0 {
		return errors.New("--fault-latency and --fault-down-for must not be negative")
	}
	return nil
}

// basicUser is the user name for basic auth, or "" without a password.
func (o *cliOptions) basicUser() string {
	if o.password == "" {
		return ""
	}
	return o.user
}

// authMode describes the accepted credentials for the start log line.
func (o *cliOptions) authMode() string {
	if o.insecureNoAuth {
		return "none"
	}
	var modes []string
	if o.password != "" {
		modes = append(modes, "basic")
	}
	if o.token != "" {
		modes = append(modes, "token")
	}
	return strings.Join(modes, "+")
}

func (o *cliOptions) tlsConfig() (*tls.Config, error) {
	switch {
	case o.tlsSelfSigned:
		cfg, caPEM, err := SelfSignedTLS(strings.Split(o.tlsHosts, ","))
		if err != nil {
			return nil, err
		}
		if o.tlsCAOut != "" {
			if err := os.WriteFile(o.tlsCAOut, caPEM, 0o644); err != nil {
				return nil, fmt.Errorf("failed to write --tls-ca-out: %w", err)
			}
		}
		return cfg, nil
	case o.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("failed to load --tls-cert/--tls-key: %w", err)
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
	}
	return nil, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q is not text or json", format)
}
