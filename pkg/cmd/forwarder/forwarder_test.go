package forwarder_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/forwarder"
	fw "github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestMissingSettingsAreNamed(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	err := forwarder.Run(context.Background(), nil, genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}, env(map[string]string{"NATS_URL": "nats://u:hunter2@127.0.0.1:1"}))
	if err == nil {
		t.Fatal("started without PHANTOM_BASE_URL")
	}
	for _, want := range []string{"PHANTOM_BASE_URL", "no SOAR credentials"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error()+errOut.String(), "hunter2") {
		t.Error("the password was printed")
	}
	if err := forwarder.Run(context.Background(), []string{"--password", "x"}, genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}, env(nil)); err == nil ||
		!strings.Contains(err.Error(), "unknown flag") {
		t.Errorf("--password flag: %v; secrets must not be accepted as flags", err)
	}
}

func TestRunsFromEnvironmentAndStops(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testkit.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- forwarder.Run(ctx, []string{"--log-format", "text"}, genericiooptions.IOStreams{Out: &bytes.Buffer{}, ErrOut: logs}, env(map[string]string{
			"PHANTOM_BASE_URL": soar.URL, "PHANTOM_TOKEN": testkit.Token, "NATS_URL": n.URL(), "LISTEN_ADDR": "127.0.0.1:0",
			"VERIFY_SSL": "false",
		}))
	}()
	testkit.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(logs.String(), "created JetStream stream") {
			return fmt.Errorf("forwarder has not set up its stream yet")
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("forwarder did not stop after SIGTERM's context ended")
	}
	for _, want := range []string{"starting forwarder", "verification of SOAR is OFF", "forwarder stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), testkit.Token) {
		t.Error("the token was logged")
	}
}

func TestVersionAndReplayCommands(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := forwarder.Run(context.Background(), []string{"version"}, genericiooptions.IOStreams{Out: &out, ErrOut: &out}, env(nil)); err != nil || !strings.HasPrefix(out.String(), "falco-phantom-forwarder ") {
		t.Errorf("version = %q, %v", out.String(), err)
	}
	n := testkit.StartNATS(t)
	out.Reset()
	err := forwarder.Run(context.Background(), []string{"replay-dead-letters", "--nats-url", n.URL()}, genericiooptions.IOStreams{Out: &out, ErrOut: &out}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "dead-letter stream") {
		t.Errorf("replay without a dead-letter stream: %v, want an error naming it", err)
	}
	out.Reset()
	err = forwarder.Run(context.Background(), []string{"replay-dead-letters", "--nats-url", n.URL(), "--reason", "bogus"}, genericiooptions.IOStreams{Out: &out, ErrOut: &out}, env(nil))
	if err == nil || !strings.Contains(err.Error(), `--reason "bogus": want one of too_large, invalid_event, phantom_rejected`) {
		t.Errorf("replay with an unknown reason: %v, want an error listing the reasons", err)
	}
	// The help shows NATS_URL from the environment as the default, without
	// its password.
	out.Reset()
	_ = forwarder.Run(context.Background(), []string{"replay-dead-letters", "--help"}, genericiooptions.IOStreams{Out: &out, ErrOut: &out},
		env(map[string]string{"NATS_URL": "nats://user:s3cret@nats:4222"}))
	if strings.Contains(out.String(), "s3cret") || !strings.Contains(out.String(), "redacted@nats:4222") {
		t.Errorf("replay --help shows the NATS password or not the redacted URL:\n%s", out.String())
	}
}

// TLS to SOAR is verified unless VERIFY_SSL=false: a self-signed SOAR is
// refused (with the fix named), trusted with PHANTOM_CA_FILE, and reached
// without verification when the user turns it off.
func TestVerifySSL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	soarURL, caFile := testkit.StartPhantomTLS(t)
	n := testkit.StartNATS(t)
	tests := []struct {
		name      string
		env       map[string]string
		wantReady string // "" for ready
	}{
		{"verified, untrusted", map[string]string{}, "PHANTOM_CA_FILE"},
		{"verified with the CA", map[string]string{"PHANTOM_CA_FILE": caFile}, ""},
		{"verification off", map[string]string{"VERIFY_SSL": "false"}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PHANTOM_BASE_URL": soarURL, "PHANTOM_TOKEN": testkit.Token, "NATS_URL": n.URL(),
				"LISTEN_ADDR": "", "NATS_CONSUMER": fmt.Sprintf("c%d", i)}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg := fw.Defaults()
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			finish := forwarder.BindFlags(&cfg, fs, func(k string) string { return env[k] })
			if err := finish(); err != nil {
				t.Fatal(err)
			}
			cfg.Listen = ""
			f, err := fw.New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- f.Run(runCtx) }()
			defer func() { cancel(); <-done }()
			testkit.WaitFor(t, 15*time.Second, func() error {
				err := f.Ready()
				switch {
				case tt.wantReady == "":
					return err
				case err == nil || !strings.Contains(err.Error(), tt.wantReady):
					return fmt.Errorf("Ready() = %v, want an error naming %s", err, tt.wantReady)
				}
				return nil
			})
		})
	}
}
