package install

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/fields"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/pki"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// cluster answers a plan's questions from a few objects.
type cluster struct {
	namespaces []string
	secrets    map[string]*corev1.Secret
}

func (c cluster) NamespaceExists(_ context.Context, name string) (bool, error) {
	return slices.Contains(c.namespaces, name), nil
}

func (c cluster) Secret(_ context.Context, _, name string) (*corev1.Secret, error) {
	if s, ok := c.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func (cluster) Record(context.Context, string) (*State, error) { return nil, nil }

// applied is what a plan's Secrets hold once written.
func applied(p *Plan) map[string]*corev1.Secret {
	out := map[string]*corev1.Secret{}
	for _, ps := range p.Secrets {
		s := ps.Secret.DeepCopy()
		s.Data = map[string][]byte{}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
		out[s.Name] = s
	}
	return out
}

func responderOptions() Options {
	o := Defaults()
	o.MockPhantom, o.Responder, o.NATSURL, o.SkipFalco = true, true, "nats://nats:4222", true
	return o
}

// The token and the certificate are made once and kept by every later
// install, while the certificate still fits.
func TestResponderSecretsAreKept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first, err := NewPlan(ctx, responderOptions(), cluster{})
	if err != nil {
		t.Fatal(err)
	}
	made := applied(first)
	tok, tls := made[SecretResponderToken], made[SecretResponderTLS]
	if tok == nil || len(tok.Data["token"]) < 32 || tls == nil || tls.Type != "kubernetes.io/tls" {
		t.Fatalf("first plan's Secrets: %v", made)
	}
	b := &pki.Bundle{CACert: tls.Data["ca.crt"], Cert: tls.Data["tls.crt"], Key: tls.Data["tls.key"]}
	for _, n := range []string{"falco-phantom-responder", "falco-phantom-responder.falco-phantom.svc", "falco-phantom-responder.falco-phantom.svc.cluster.local"} {
		if err := pki.CheckServer(b, []string{n}, time.Now()); err != nil {
			t.Errorf("the certificate does not serve %s: %v", n, err)
		}
	}
	again, err := NewPlan(ctx, responderOptions(), cluster{secrets: made})
	if err != nil {
		t.Fatal(err)
	}
	kept := applied(again)
	if string(kept[SecretResponderToken].Data["token"]) != string(tok.Data["token"]) || string(kept[SecretResponderTLS].Data["tls.key"]) != string(tls.Data["tls.key"]) {
		t.Error("a re-install changed the responder's token or certificate")
	}
	if !slices.Contains(again.Record.Secrets, SecretResponderTLS) || again.Record.Responder == nil || again.Record.Responder.TLSSecret != SecretResponderTLS {
		t.Errorf("record: %+v %+v", again.Record.Secrets, again.Record.Responder)
	}

	// In another namespace the kept certificate would not fit: a new one.
	o := responderOptions()
	o.Namespace = "security"
	other, err := NewPlan(ctx, o, cluster{secrets: made})
	if err != nil {
		t.Fatal(err)
	}
	if string(applied(other)[SecretResponderTLS].Data["tls.key"]) == string(tls.Data["tls.key"]) {
		t.Error("a certificate for falco-phantom was kept for security")
	}
}

// A given TLS Secret replaces the generated one, and must hold what the
// responder and the mock need.
func TestResponderTLSSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := responderOptions()
	o.ResponderTLSSecret = "mine"
	_, err := NewPlan(ctx, o, cluster{secrets: map[string]*corev1.Secret{"mine": {Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}}}})
	if err == nil || !strings.Contains(err.Error(), "mine lacks the keys ca.crt") {
		t.Fatalf("a TLS Secret without ca.crt for the mock: %v", err)
	}
	o.MockPhantom, o.PhantomURL, o.PhantomSecret = false, "https://soar.example.com", "soar"
	p, err := NewPlan(ctx, o, cluster{secrets: map[string]*corev1.Secret{
		"mine": {Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}},
		"soar": {Data: map[string][]byte{"token": []byte("t")}},
	}})
	if err != nil {
		t.Fatalf("a TLS Secret without ca.crt, without the mock: %v", err)
	}
	if _, made := applied(p)[SecretResponderTLS]; made || p.Record.Responder.TLSSecret != "mine" || slices.Contains(p.Record.Secrets, "mine") {
		t.Errorf("with a given Secret: made %v, record %+v", made, p.Record)
	}
	if tls := p.Release(Responder).Request.Values["tls"].(map[string]any)["secret"]; tls != "mine" {
		t.Errorf("responder serves %v", tls)
	}
}

// The options are checked field by field, and the namespaces must exist.
func TestResponderOptionErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		modify func(*Options)
		fields []string
		says   string
	}{
		{"namespaces without responder", func(o *Options) { o.Responder, o.ResponderNamespaces = false, []string{"shop"} }, []string{"ResponderNamespaces", "Responder"}, "goes with"},
		{"bad namespace", func(o *Options) { o.ResponderNamespaces = []string{"Shop_1"} }, []string{"ResponderNamespaces"}, "not a namespace name"},
		{"no namespace", func(o *Options) { o.ResponderNamespaces = nil }, []string{"ResponderNamespaces"}, "or * for all but falco-phantom and kube-system"},
		{"unknown action", func(o *Options) { o.ResponderActions = []respond.Action{"isolate", "nuke"} }, []string{"ResponderActions"}, `unknown action "nuke"`},
		{"no action", func(o *Options) { o.ResponderActions = nil }, []string{"ResponderActions"}, "is empty"},
		{"missing namespace", func(o *Options) { o.ResponderNamespaces = []string{"shop", "nowhere"} }, []string{"ResponderNamespaces"}, "namespace nowhere does not exist"},
	} {
		o := responderOptions()
		c.modify(&o)
		_, err := NewPlan(context.Background(), o, cluster{namespaces: []string{"shop"}})
		var l fields.List
		var e *fields.Error
		var got []string
		switch {
		case errors.As(err, &l):
			got = l[0].Fields()
		case errors.As(err, &e):
			got = e.Fields()
		}
		if !slices.Equal(got, c.fields) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v (fields %v); want fields %v saying %q", c.name, err, got, c.fields, c.says)
		}
	}
	// The mock gets no playbook when the responder may not isolate.
	o := responderOptions()
	o.ResponderActions = []respond.Action{respond.Describe}
	p, err := NewPlan(context.Background(), o, cluster{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Release(MockPhantom).Request.Values["playbooks"]; ok {
		t.Error("the mock got an isolate playbook the responder would refuse")
	}
}
