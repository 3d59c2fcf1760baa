package install_test

import (
	"strings"
	"testing"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

func TestValidateNamesTheFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*install.Options)
		want   string
	}{
		{"no SOAR at all", func(o *install.Options) {}, "--phantom-url"},
		{"mock and real", func(o *install.Options) { o.MockPhantom, o.PhantomURL = true, "https://x" }, "--mock-phantom installs its own SOAR"},
		{"no credentials", func(o *install.Options) { o.PhantomURL = "https://x" }, "SOAR credentials are missing"},
		{"user without password", func(o *install.Options) { o.PhantomURL, o.PhantomAuth = "https://x", phantom.Auth{User: "u"} }, "go together"},
		{"token and user", func(o *install.Options) {
			o.PhantomURL, o.PhantomAuth = "https://x", phantom.Auth{User: "u", Password: "p", Token: "t"}
		}, "exclude each other"},
		{"secret and token", func(o *install.Options) {
			o.PhantomURL, o.PhantomAuth, o.PhantomSecret = "https://x", phantom.Auth{Token: "t"}, "s"
		}, "--phantom-secret and"},
		{"url with password", func(o *install.Options) { o.PhantomURL, o.PhantomSecret = "https://u:pw@x", "s" }, "must not contain credentials"},
		{"nats replicas with nats url", func(o *install.Options) {
			o.MockPhantom, o.NATSURL, o.NATSReplicas = true, "nats://n:4222", 3
		}, "--nats-replicas applies to the NATS this command installs"},
		{"bad nats url", func(o *install.Options) { o.MockPhantom, o.NATSURL = true, "http://n" }, "--nats-url"},
		{"nats creds without nats url", func(o *install.Options) { o.MockPhantom, o.NATSCreds = true, []byte("jwt") }, "--nats-creds-file goes with --nats-url"},
		{"nats url with password", func(o *install.Options) { o.MockPhantom, o.NATSURL = true, "nats://u:pw@n:4222" }, "--nats-url must not hold credentials"},
		{"unparsable nats url with password", func(o *install.Options) { o.MockPhantom, o.NATSURL = true, "nats://u:pw%zz@n:4222" }, "--nats-url must not hold credentials"},
		{"two nats servers", func(o *install.Options) { o.MockPhantom, o.NATSReplicas = true, 2 }, "want 1 (a lab), or 3 or 5"},
		{"ebpf driver", func(o *install.Options) { o.MockPhantom, o.FalcoDriver = true, "ebpf" }, "ebpf was removed"},
		{"skip falco with settings", func(o *install.Options) {
			o.MockPhantom, o.SkipFalco, o.FalcoSet = true, true, []string{"a=b"}
		}, "--skip-falco"},
		{"falco set without value", func(o *install.Options) { o.MockPhantom, o.FalcoSet = true, []string{"tty"} }, "want key=value"},
		{"bad subject", func(o *install.Options) { o.MockPhantom, o.Subject = true, "falco.>.x" }, "--subject"},
		{"insecure with mock", func(o *install.Options) { o.MockPhantom, o.InsecureSkipTLSVerify = true, true }, "no effect with --mock-phantom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := install.Defaults()
			tt.modify(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "pw") {
				t.Errorf("error is not one clean line: %q", err)
			}
		})
	}
	ok := install.Defaults()
	ok.MockPhantom = true
	if err := ok.Validate(); err != nil {
		t.Errorf("--mock-phantom alone: %v", err)
	}
	seed := install.Defaults()
	seed.PhantomURL, seed.PhantomAuth, seed.Subject = "https://soar.example.com", phantom.Auth{User: "admin", Password: "p"}, "falco.*.*"
	if err := seed.Validate(); err != nil {
		t.Errorf("the original deployment's settings: %v", err)
	}
}
