package install_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestRenderGolden pins what --dry-run prints for this project's own charts
// (the upstream charts are left out: NATS and Falco are given as existing).
func TestRenderGolden(t *testing.T) {
	t.Parallel()
	base := func() install.Options {
		o := install.Defaults()
		o.NATSURL, o.SkipFalco, o.ImageTag = "nats://nats.messaging.svc:4222", true, "0.1.0"
		return o
	}
	tests := []struct {
		name   string
		modify func(*install.Options)
	}{
		{"mock-phantom", func(o *install.Options) { o.MockPhantom = true }},
		{"token-keda-replicas", func(o *install.Options) {
			o.PhantomURL, o.PhantomAuth = "https://soar.example.com", phantom.Auth{Token: "secret-token-never-printed"}
			o.InsecureSkipTLSVerify, o.Subjects, o.ForwarderReplicas, o.KEDA = true, []string{"falco.*.*"}, 3, true
			o.ImageRegistry, o.GroupWindow, o.Namespace = "registry.internal:5000", 2*time.Minute, "security"
		}},
		{"kubeless", func(o *install.Options) {
			o.Runtime, o.PhantomURL = install.RuntimeKubeless, "https://soar.example.com"
			o.PhantomAuth = phantom.Auth{User: "admin", Password: "secret-token-never-printed"}
			o.Subjects = []string{"falco.*.*", "falco.error.>"}
		}},
		{"existing-secret", func(o *install.Options) {
			o.PhantomURL, o.PhantomSecret, o.PhantomLabel = "https://soar.example.com", "soar-creds", "falco"
		}},
		{"responder-mock", func(o *install.Options) { o.MockPhantom, o.Responder = true, true }},
		{"responder-namespaces", func(o *install.Options) {
			o.PhantomURL, o.PhantomAuth = "https://soar.example.com:8443", phantom.Auth{Token: "secret-token-never-printed"}
			o.Responder, o.ResponderNamespaces, o.ResponderTLSSecret = true, []string{"shop", "web"}, "my-responder-tls"
			o.ResponderActions = respond.Actions()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := base()
			tt.modify(&o)
			p, err := install.NewPlan(context.Background(), o, install.Offline)
			if err != nil {
				t.Fatal(err)
			}
			in := &install.Installer{Helm: helm.New(nil, nil)}
			got, err := in.Render(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(got, "secret-token-never-printed") {
				t.Fatal("--dry-run printed the token")
			}
			file := filepath.Join("testdata", "golden", tt.name+".yaml")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run: go test ./pkg/install -run TestRenderGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("--dry-run output changed; if intended, run: go test ./pkg/install -run TestRenderGolden -update\n%s", firstDiff(string(want), got))
			}
		})
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return ""
}
