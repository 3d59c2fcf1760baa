package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
)

// Environment variables read by the command.
const (
	envUser     = "MOCKPHANTOM_USER"
	envPassword = "MOCKPHANTOM_PASSWORD"
	envToken    = "MOCKPHANTOM_TOKEN"
)

// options are the command's flags; complete adds the secrets from files
// and the environment.
type options struct {
	listen, db                 string
	user, password, token      string
	passwordFile, tokenFile    string
	insecureNoAuth             bool
	labels                     []string
	duplicateStatus            int
	maxBodyBytes               int64
	tlsSelfSigned              bool
	tlsHosts, tlsCAOut         string
	tlsCert, tlsKey            string
	faultLatency, faultDownFor time.Duration
	faultErrorRate             float64
	faultTimeoutRate           float64
	faultThrottleRate          float64
	faultSeed                  uint64
	logFormat, logLevel        string
	playbooks                  string
}

func (o *options) bindFlags(fs *pflag.FlagSet, getenv func(string) string) {
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.db, "db", "", "SQLite database `file`, created if missing (required)")
	fs.StringVar(&o.user, "user", input.Env(getenv, envUser, "admin"), "user name for HTTP basic auth (or "+envUser+")")
	fs.StringVar(&o.password, "password", "", "password for HTTP basic auth; visible in the process list, prefer --password-file or "+envPassword)
	fs.StringVar(&o.passwordFile, "password-file", "", "read the password from `file`")
	fs.StringVar(&o.token, "token", "", "API token for the ph-auth-token header; visible in the process list, prefer --token-file or "+envToken)
	fs.StringVar(&o.tokenFile, "token-file", "", "read the API token from `file`")
	fs.BoolVar(&o.insecureNoAuth, "insecure-no-auth", false, "accept requests without credentials")
	fs.StringArrayVar(&o.labels, "label", nil, "a container `label` that exists (repeatable; default events)")
	fs.IntVar(&o.duplicateStatus, "duplicate-status", mockphantom.DefaultDuplicateStatus, "HTTP status of duplicate answers")
	fs.Int64Var(&o.maxBodyBytes, "max-body-bytes", mockphantom.DefaultMaxBodyBytes, "largest accepted request body")
	fs.BoolVar(&o.tlsSelfSigned, "tls-self-signed", false, "serve HTTPS with an ephemeral CA and certificate")
	fs.StringVar(&o.tlsHosts, "tls-hosts", "127.0.0.1,localhost", "comma-separated host names and IPs of the self-signed certificate")
	fs.StringVar(&o.tlsCAOut, "tls-ca-out", "", "write the self-signed CA certificate (PEM) to `file` for clients to trust")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with this certificate `file` (PEM)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "private key `file` (PEM) of --tls-cert")
	fs.DurationVar(&o.faultLatency, "fault-latency", 0, "latency added to every /rest request")
	fs.Float64Var(&o.faultErrorRate, "fault-error-rate", 0, "share (0..1) of /rest requests answered 503")
	fs.Float64Var(&o.faultTimeoutRate, "fault-timeout-rate", 0, "share (0..1) of /rest requests that hang until the client gives up")
	fs.Float64Var(&o.faultThrottleRate, "fault-throttle-rate", 0, "share (0..1) of /rest requests answered 429 Too Many Requests")
	fs.DurationVar(&o.faultDownFor, "fault-down-for", 0, "answer every /rest request 503 for this long after start")
	fs.Uint64Var(&o.faultSeed, "fault-seed", 0, "seed of the fault injection's random source (0: random)")
	fs.StringVar(&o.playbooks, "playbooks", "", "YAML `file` of playbooks that call falco-phantom-responder on new cases (see the README)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug (one line per request), info, warn or error")
}

// complete fills the secrets from files and the environment and warns
// about secrets given on the command line.
func (o *options) complete(fs *pflag.FlagSet, getenv func(string) string, stderr io.Writer) error {
	var err error
	if o.password, err = secret("password", o.password, fs.Changed("password"), o.passwordFile, getenv(envPassword), stderr); err != nil {
		return err
	}
	if o.token, err = secret("token", o.token, fs.Changed("token"), o.tokenFile, getenv(envToken), stderr); err != nil {
		return err
	}
	return nil
}

// secret picks a secret from --name, --name-file or the environment, in
// that order, and refuses two sources on the command line. A file must
// not be empty.
func secret(name, flagValue string, flagSet bool, file, envValue string, stderr io.Writer) (string, error) {
	switch {
	case flagSet && file != "":
		return "", fmt.Errorf("use only one of --%s and --%s-file", name, name)
	case flagSet:
		fmt.Fprintf(stderr, "mockphantom: warning: --%s is visible to other users in the process list; prefer --%s-file or the environment\n", name, name)
		return flagValue, nil
	case file != "":
		v, err := input.SecretFile(file)
		if err != nil {
			return "", fmt.Errorf("failed to read --%s-file: %w", name, err)
		}
		return v, nil
	}
	return envValue, nil
}

func (o *options) validate() error {
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
	for name, rate := range map[string]float64{"--fault-error-rate": o.faultErrorRate, "--fault-timeout-rate": o.faultTimeoutRate, "--fault-throttle-rate": o.faultThrottleRate} {
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
func (o *options) basicUser() string {
	if o.password == "" {
		return ""
	}
	return o.user
}

// authMode describes the accepted credentials for the start log line.
func (o *options) authMode() string {
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
