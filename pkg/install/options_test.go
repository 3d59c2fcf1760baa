package install_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/fields"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// Validate names the fields at fault, whoever set them (the command line
// names them as its flags: see pkg/cmd/install).
func TestValidateNamesTheFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*install.Options)
		want   []string
	}{
		{"no SOAR at all", func(o *install.Options) {}, []string{"PhantomURL", "MockPhantom"}},
		{"mock and real", func(o *install.Options) { o.MockPhantom, o.PhantomURL = true, "https://x" },
			[]string{"MockPhantom", "PhantomURL", "PhantomAuth.User", "PhantomAuth.Password", "PhantomAuth.Token", "PhantomSecret"}},
		{"user without password", func(o *install.Options) { o.PhantomURL, o.PhantomAuth = "https://x", phantom.Auth{User: "u"} }, []string{"PhantomAuth.User", "PhantomAuth.Password"}},
		{"two servers", func(o *install.Options) { o.MockPhantom, o.NATSReplicas = true, 2 }, []string{"NATSReplicas"}},
		{"kubeless with keda", func(o *install.Options) { o.MockPhantom, o.Runtime, o.KEDA = true, install.RuntimeKubeless, true }, []string{"KEDA", "ForwarderReplicas", "Runtime"}},
		{"no subject", func(o *install.Options) { o.MockPhantom, o.Subjects = true, nil }, []string{"Subjects"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := install.Defaults()
			tt.modify(&o)
			var l fields.List
			if err := o.Validate(); !errors.As(err, &l) || !slices.Equal(l[0].Fields(), tt.want) {
				t.Fatalf("Validate() = %v, want a first problem naming %v", err, tt.want)
			}
		})
	}
	ok := install.Defaults()
	ok.MockPhantom = true
	if err := ok.Validate(); err != nil {
		t.Errorf("the mock alone: %v", err)
	}
	seed := install.Defaults()
	seed.PhantomURL, seed.PhantomAuth, seed.Subjects = "https://soar.example.com", phantom.Auth{User: "admin", Password: "p"}, []string{"falco.*.*"}
	if err := seed.Validate(); err != nil {
		t.Errorf("the original deployment's settings: %v", err)
	}
}

// --nats-set and --falco-set go over install's own values: the user's
// word is the last, except that JetStream stays on.
func TestChartSetsGoOverInstallValues(t *testing.T) {
	t.Parallel()
	o := install.Defaults()
	o.MockPhantom = true
	o.NATSSet = []string{"reloader.enabled=false", "natsBox.enabled=true"}
	o.FalcoSet = []string{"tty=false", "falcosidekick.image.tag=2.34.1"}
	p, err := install.NewPlan(context.Background(), o, install.Offline)
	if err != nil {
		t.Fatal(err)
	}
	nats := p.Release(install.NATS).Request.Values
	if nats["reloader"].(map[string]any)["enabled"] != false || nats["natsBox"].(map[string]any)["enabled"] != true {
		t.Errorf("NATS values = %v, want reloader off and natsBox on as set", nats)
	}
	falcoValues := p.Release(install.Falco).Request.Values
	sidekick := falcoValues["falcosidekick"].(map[string]any)
	if falcoValues["tty"] != false || sidekick["image"].(map[string]any)["tag"] != "2.34.1" || sidekick["config"] == nil {
		t.Errorf("Falco values = %v, want tty off, the sidekick tag set and its NATS settings kept", falcoValues)
	}
}
