package responder

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/responder"
)

// bindFlags registers the responder's settings in cfg as flags whose
// defaults come from the environment, so that a flag overrides a variable
// and a variable the built-in default. SOAR's settings have the
// forwarder's flags and variables. Errors in variables are collected; the
// returned function reports them after parsing and completes what the
// flags give as text (lists, the policy's protected namespaces).
func bindFlags(cfg *responder.Config, fs *pflag.FlagSet, getenv func(string) string) func() error {
	var errs []error
	str := func(key, def string) string { return input.Env(getenv, key, def) }
	parsed := func(key string, def any, parse func(string) (any, error)) any {
		v := getenv(key)
		if v == "" {
			return def
		}
		out, err := parse(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
			return def
		}
		return out
	}
	dur := func(key string, def time.Duration) time.Duration {
		return parsed(key, def, func(s string) (any, error) { return time.ParseDuration(s) }).(time.Duration)
	}
	float := func(key string, def float64) float64 {
		return parsed(key, def, func(s string) (any, error) { return strconv.ParseFloat(s, 64) }).(float64)
	}
	num := func(key string, def int) int {
		return parsed(key, def, func(s string) (any, error) { return strconv.Atoi(s) }).(int)
	}
	verify := parsed("VERIFY_SSL", cfg.SOAR.VerifySSL, func(s string) (any, error) { return input.Bool(s) }).(bool)
	cfg.SOAR.Auth = phantom.Auth{User: getenv("PHANTOM_USER"), Password: getenv("PHANTOM_PASSWORD"), Token: getenv("PHANTOM_TOKEN")}

	fs.StringVar(&cfg.Listen, "listen", str("LISTEN_ADDR", cfg.Listen), "HTTPS address of the API, /healthz, /readyz and /metrics [LISTEN_ADDR]")
	fs.StringVar(&cfg.CertFile, "tls-cert-file", str("TLS_CERT_FILE", ""), "PEM certificate served, read again when it changes [TLS_CERT_FILE]")
	fs.StringVar(&cfg.KeyFile, "tls-key-file", str("TLS_KEY_FILE", ""), "PEM key of the certificate [TLS_KEY_FILE]")
	fs.StringVar(&cfg.TokenFile, "token-file", str("RESPONDER_TOKEN_FILE", ""), "file holding the bearer token callers must send, read again when it changes [RESPONDER_TOKEN_FILE]")
	namespaces := str("RESPONDER_NAMESPACES", "")
	fs.StringVar(&namespaces, "namespaces", namespaces, "namespaces the actions may happen in, comma separated, or * for all but the protected ones [RESPONDER_NAMESPACES]")
	actions := str("RESPONDER_ACTIONS", joinActions(cfg.Policy.Actions))
	fs.StringVar(&actions, "actions", actions, "actions allowed, comma separated, of "+joinActions(respond.Actions())+" [RESPONDER_ACTIONS]")
	installNS := getenv("POD_NAMESPACE")
	fs.Float64Var(&cfg.Rate, "rate", float("RATE_LIMIT", cfg.Rate), "action requests per second allowed on average [RATE_LIMIT]")
	fs.IntVar(&cfg.Burst, "burst", num("RATE_BURST", cfg.Burst), "action requests allowed at once above the rate [RATE_BURST]")
	fs.DurationVar(&cfg.ActionTimeout, "action-timeout", dur("ACTION_TIMEOUT", cfg.ActionTimeout), "longest an action may take [ACTION_TIMEOUT]")
	s := &cfg.SOAR
	fs.StringVar(&s.BaseURL, "phantom-url", str("PHANTOM_BASE_URL", ""), "SOAR base URL where outcomes are noted into cases; empty notes nothing [PHANTOM_BASE_URL]")
	fs.StringVar(&s.UserFile, "phantom-user-file", str("PHANTOM_USER_FILE", ""), "file holding the SOAR user name [PHANTOM_USER_FILE]")
	fs.StringVar(&s.PasswordFile, "phantom-password-file", str("PHANTOM_PASSWORD_FILE", ""), "file holding the SOAR password [PHANTOM_PASSWORD_FILE]")
	fs.StringVar(&s.TokenFile, "phantom-token-file", str("PHANTOM_TOKEN_FILE", ""), "file holding a SOAR automation token [PHANTOM_TOKEN_FILE]")
	fs.StringVar(&s.CAFile, "phantom-ca-file", str("PHANTOM_CA_FILE", ""), "PEM file of CAs to trust for SOAR's certificate [PHANTOM_CA_FILE]")
	fs.BoolVar(&s.VerifySSL, "verify-ssl", verify, "verify SOAR's TLS certificate [VERIFY_SSL]")
	fs.DurationVar(&s.Timeout, "phantom-timeout", dur("PHANTOM_TIMEOUT", s.Timeout), "timeout of each SOAR request [PHANTOM_TIMEOUT]")
	return func() error {
		cfg.Policy.Namespaces = input.List(namespaces)
		cfg.Policy.Protected = respond.ProtectedNamespaces(installNS)
		list, err := respond.ParseActions(input.List(actions))
		if err != nil {
			errs = append(errs, fmt.Errorf("--actions: %w", err))
		}
		cfg.Policy.Actions = list
		if len(list) == 0 && err == nil {
			errs = append(errs, errors.New("--actions is empty: allow at least one action"))
		}
		return errors.Join(errs...)
	}
}

func joinActions(as []respond.Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ",")
}
