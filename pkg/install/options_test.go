package install_test

import (
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
