package install_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/cli"
	cmdinstall "github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/install"
)

// run runs the install command with args and no cluster.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cli.Env{Kube: genericclioptions.NewConfigFlags(true), Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Getenv: func(string) string { return "" }}
	cmd := cmdinstall.NewCommand(env)
	env.Kube.AddFlags(cmd.PersistentFlags())
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

// Problems with the options are said with the flags the user typed.
func TestValidateNamesTheFlags(t *testing.T) {
	t.Parallel()
	creds := filepath.Join(t.TempDir(), "nats.creds")
	if err := os.WriteFile(creds, []byte("-----BEGIN NATS USER JWT-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no SOAR at all", nil, "say where SOAR is: --phantom-url https://soar.example.com, or --mock-phantom"},
		{"mock and real", []string{"--mock-phantom", "--phantom-url", "https://x"}, "--mock-phantom installs its own SOAR"},
		{"no credentials", []string{"--phantom-url", "https://x"}, "SOAR credentials are missing: --phantom-token-file, --phantom-user with --phantom-password-file, or --phantom-secret NAME"},
		{"user without password", []string{"--phantom-url", "https://x", "--phantom-user", "u"}, "--phantom-user and --phantom-password go together"},
		{"token and user", []string{"--phantom-url", "https://x", "--phantom-user", "u", "--phantom-password", "p", "--phantom-token", "t"}, "--phantom-token and --phantom-user/--phantom-password exclude each other"},
		{"secret and token", []string{"--phantom-url", "https://x", "--phantom-token", "t", "--phantom-secret", "s"}, "--phantom-secret and"},
		{"url with password", []string{"--phantom-url", "https://u:pw@x", "--phantom-secret", "s"}, "must not contain credentials"},
		{"nats replicas with nats url", []string{"--mock-phantom", "--nats-url", "nats://n:4222", "--nats-replicas", "3"}, "--nats-replicas applies to the NATS this command installs, not to --nats-url"},
		{"bad nats url", []string{"--mock-phantom", "--nats-url", "http://n"}, "--nats-url"},
		{"nats creds without nats url", []string{"--mock-phantom", "--nats-creds-file", creds}, "--nats-creds-file goes with --nats-url"},
		{"nats url with password", []string{"--mock-phantom", "--nats-url", "nats://u:pw@n:4222"}, "--nats-url must not hold credentials"},
		{"unparsable nats url with password", []string{"--mock-phantom", "--nats-url", "nats://u:pw%zz@n:4222"}, "--nats-url must not hold credentials"},
		{"two nats servers", []string{"--mock-phantom", "--nats-replicas", "2"}, "want 1 (a lab), or 3 or 5"},
		{"ebpf driver", []string{"--mock-phantom", "--falco-driver", "ebpf"}, "ebpf was removed"},
		{"skip falco with settings", []string{"--mock-phantom", "--skip-falco", "--falco-set", "a=b"}, "--skip-falco: --falco-driver and --falco-set have nothing to configure"},
		{"falco set without value", []string{"--mock-phantom", "--falco-set", "tty"}, "--falco-set \"tty\": want key=value"},
		{"falco set unparsable", []string{"--mock-phantom", "--falco-set", "extra.env[x].name=A"}, "--falco-set \"extra.env[x].name=A\""},
		{"nats set without value", []string{"--mock-phantom", "--nats-set", "reloader.enabled"}, "--nats-set \"reloader.enabled\": want key=value"},
		{"nats set with nats url", []string{"--mock-phantom", "--nats-url", "nats://n:4222", "--nats-set", "a=b"}, "--nats-set configures the NATS this command installs, not the one at --nats-url"},
		{"nats set without jetstream", []string{"--mock-phantom", "--nats-set", "config.jetstream.enabled=false"}, "--nats-set must leave config.jetstream.enabled true"},
		{"bad subject", []string{"--mock-phantom", "--subject", "falco.>.x"}, "--subject \"falco.>.x\""},
		{"subject takes in the dead letters", []string{"--mock-phantom", "--subject", ">"}, "loop back"},
		{"two subjects", []string{"--mock-phantom", "--subject", "a.b", "--subject", "c.d"}, "--subject was given 2 times"},
		{"insecure with mock", []string{"--mock-phantom", "--insecure-skip-tls-verify"}, "no effect with --mock-phantom"},
		{"kubeless with keda", []string{"--mock-phantom", "--runtime", "kubeless", "--keda"}, "--keda and --forwarder-replicas apply to the default runtime, not to --runtime kubeless"},
		{"empty namespace", []string{"--mock-phantom", "--timeout", "0"}, "--timeout must be positive"},
		{"responder namespaces without responder", []string{"--mock-phantom", "--responder-namespaces", "shop"}, "--responder-namespaces goes with --responder"},
		{"responder tls secret without responder", []string{"--mock-phantom", "--responder-tls-secret", "x"}, "--responder-tls-secret goes with --responder"},
		{"unknown responder action", []string{"--mock-phantom", "--responder", "--responder-actions", "isolate,nuke"}, `--responder-actions: unknown action "nuke"`},
		{"bad responder namespace", []string{"--mock-phantom", "--responder", "--responder-namespaces", "shop, Web"}, `--responder-namespaces "Web" is not a namespace name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := run(t, append(tt.args, "--dry-run")...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("install %v = %v, want an error mentioning %q", tt.args, err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "pw") {
				t.Errorf("error is not one clean line: %q", err)
			}
		})
	}
}
