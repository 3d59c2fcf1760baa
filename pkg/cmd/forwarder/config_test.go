package forwarder

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	fw "github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
)

func parseConfig(t *testing.T, env map[string]string, args ...string) (fw.Config, error) {
	t.Helper()
	cfg := fw.Defaults()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	finish := BindFlags(&cfg, fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if err := finish(); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func TestConfigFromOriginalEnvironment(t *testing.T) {
	t.Parallel()
	// Exactly what the original function was deployed with.
	cfg, err := parseConfig(t, map[string]string{
		"PHANTOM_BASE_URL": "https://soar.example.com/", "PHANTOM_USER": "admin", "PHANTOM_PASSWORD": "s3cret",
		"VERIFY_SSL": "false", "NATS_SUBJECT": "falco.*.*",
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if cfg.Phantom.VerifySSL || cfg.Phantom.Auth.User != "admin" || cfg.Phantom.Auth.Password != "s3cret" ||
		cfg.NATS.Subject != "falco.*.*" || cfg.Phantom.Label != "events" || cfg.NATS.Mode != fw.ModeJetStream {
		t.Errorf("config = %+v", cfg)
	}
	if strings.Contains(cfg.Phantom.Auth.String(), "s3cret") {
		t.Errorf("Auth.String() shows the password: %s", cfg.Phantom.Auth)
	}
}

func TestConfigFlagsOverrideEnvironment(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig(t, map[string]string{"PHANTOM_BASE_URL": "https://a.example", "PHANTOM_TOKEN": "t", "GROUP_WINDOW": "1m"},
		"--phantom-url", "https://b.example", "--group-window", "0", "--mode", "core")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Phantom.BaseURL != "https://b.example" || cfg.GroupWindow != 0 || cfg.NATS.Mode != fw.ModeCore {
		t.Errorf("got url %s window %s mode %s", cfg.Phantom.BaseURL, cfg.GroupWindow, cfg.NATS.Mode)
	}
	if cfg, _ := parseConfig(t, map[string]string{"GROUP_WINDOW": "90s"}); cfg.GroupWindow != 90*time.Second {
		t.Errorf("GROUP_WINDOW=90s gave %s", cfg.GroupWindow)
	}
}

func TestConfigErrorsSayWhatToFix(t *testing.T) {
	t.Parallel()
	ok := map[string]string{"PHANTOM_BASE_URL": "https://soar.example.com", "PHANTOM_TOKEN": "t"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no url", with("PHANTOM_BASE_URL", ""), nil, "PHANTOM_BASE_URL"},
		{"url with password", with("PHANTOM_BASE_URL", "https://u:hunter2@soar.example.com"), nil, "must not contain credentials"},
		{"no credentials", map[string]string{"PHANTOM_BASE_URL": "https://soar.example.com"}, nil, "no SOAR credentials"},
		{"bad verify", with("VERIFY_SSL", "maybe"), nil, "VERIFY_SSL"},
		{"bad window", with("GROUP_WINDOW", "soon"), nil, "GROUP_WINDOW"},
		{"bad mode", ok, []string{"--mode", "kafka"}, "want jetstream, core or function"},
		{"bad subject", with("NATS_SUBJECT", "falco.>.x"), nil, "last token"},
		{"loop", ok, []string{"--dead-letter-subject", "falco.dead"}, "loop"},
		{"workers", with("WORKERS", "0"), nil, "workers 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseConfig(t, tt.env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// --help shows the environment's NATS_URL as the default: never with its
// credentials.
func TestHelpHidesNATSCredentials(t *testing.T) {
	env := map[string]string{"NATS_URL": "nats://user:s3cret@nats:4222"}
	cfg := fw.Defaults()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	BindFlags(&cfg, fs, func(k string) string { return env[k] })
	if usage := fs.FlagUsages(); strings.Contains(usage, "s3cret") || !strings.Contains(usage, "nats://redacted@nats:4222") {
		t.Errorf("usage shows the credentials or not the redacted URL:\n%s", usage)
	}
	if cfg.NATS.URL != env["NATS_URL"] {
		t.Errorf("the URL itself changed: %q", cfg.NATS.URL)
	}
}
