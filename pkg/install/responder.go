package install

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/fields"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/pki"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// validateResponder checks the responder's options.
func (o *Options) validateResponder() fields.List {
	var errs fields.List
	add := func(format string, args ...any) { errs = append(errs, fields.Errorf(format, args...)) }
	if !o.Responder {
		d := Defaults()
		for field, given := range map[string]bool{
			"ResponderNamespaces": !slices.Equal(o.ResponderNamespaces, d.ResponderNamespaces),
			"ResponderActions":    !slices.Equal(o.ResponderActions, d.ResponderActions),
			"ResponderTLSSecret":  o.ResponderTLSSecret != "",
		} {
			if given {
				add("{" + field + "} goes with {Responder}")
			}
		}
		slices.SortFunc(errs, func(a, b *fields.Error) int { return strings.Compare(a.Error(), b.Error()) })
		return errs
	}
	if len(o.ResponderNamespaces) == 0 {
		add("{ResponderNamespaces} is empty: list the namespaces to act in, or %s for all but %s", respond.AllNamespaces, strings.Join(respond.ProtectedNamespaces(o.Namespace), " and "))
	}
	for _, ns := range o.ResponderNamespaces {
		if ns == respond.AllNamespaces {
			continue
		}
		if bad := validation.IsDNS1123Label(ns); len(bad) > 0 {
			add("{ResponderNamespaces} %q is not a namespace name: %s", ns, bad[0])
		}
	}
	if len(o.ResponderActions) == 0 {
		add("{ResponderActions} is empty: allow at least one of %s", actionList(respond.Actions()))
	}
	for _, a := range o.ResponderActions {
		if _, err := respond.ParseAction(string(a)); err != nil {
			add("{ResponderActions}: %v", err)
		}
	}
	if s := o.ResponderTLSSecret; s != "" {
		if bad := validation.IsDNS1123Subdomain(s); len(bad) > 0 {
			add("{ResponderTLSSecret} %q is not a Secret name: %s", s, bad[0])
		}
	}
	return errs
}

func actionList(as []respond.Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// responderService is the responder's Service name in namespace, in the
// forms its certificate serves.
func responderNames(namespace string) []string {
	svc := ReleaseResponder
	return []string{svc, svc + "." + namespace, svc + "." + namespace + ".svc", svc + "." + namespace + ".svc.cluster.local"}
}

// ResponderURL is the responder's address inside the cluster.
func ResponderURL(namespace string) string {
	return fmt.Sprintf("https://%s.%s.svc:%d", ReleaseResponder, namespace, ResponderPort)
}

// planResponder checks that the allowed namespaces exist and decides the
// responder's Secrets: its token and, unless one is given, its CA and
// certificate, both kept from an earlier install.
func (s *settings) planResponder(ctx context.Context, p *Plan, lookups Lookups) error {
	ns := s.Namespace
	for _, name := range s.ResponderNamespaces {
		if name == respond.AllNamespaces || name == ns {
			continue
		}
		exists, known, err := namespaceKnown(ctx, lookups, name)
		if err != nil {
			return err
		}
		if known && !exists {
			return fields.Errorf("{ResponderNamespaces}: namespace %s does not exist: create it first, or leave it out", name)
		}
	}
	token, err := responderToken(ctx, lookups, ns)
	if err != nil {
		return err
	}
	p.Secrets = append(p.Secrets, PlannedSecret{What: "the responder's bearer token",
		Secret: secretOf(ns, SecretResponderToken, map[string]string{"token": token})})
	if s.ResponderTLSSecret != "" {
		s.responderTLS = s.ResponderTLSSecret
		return s.checkResponderTLS(ctx, lookups)
	}
	s.responderTLS = SecretResponderTLS
	b, err := responderBundle(ctx, lookups, ns, time.Now())
	if err != nil {
		return err
	}
	secret := secretOf(ns, SecretResponderTLS, map[string]string{"ca.crt": string(b.CACert), "tls.crt": string(b.Cert), "tls.key": string(b.Key)})
	secret.Type = "kubernetes.io/tls"
	p.Secrets = append(p.Secrets, PlannedSecret{What: "the responder's CA and certificate", Secret: secret})
	return nil
}

// namespaceKnown tells whether a namespace exists, and whether that is
// known at all: not offline, nor to a user who may not read it.
func namespaceKnown(ctx context.Context, lookups Lookups, name string) (exists, known bool, err error) {
	switch l := lookups.(type) {
	case offline:
		return false, false, nil
	case interface {
		namespaceKnown(context.Context, string) (bool, bool, error)
	}:
		return l.namespaceKnown(ctx, name)
	}
	exists, err = lookups.NamespaceExists(ctx, name)
	return exists, err == nil, err
}

// responderToken is the token already in the cluster, so that a
// re-install keeps what SOAR's playbooks hold, or a new random one.
func responderToken(ctx context.Context, lookups Lookups, namespace string) (string, error) {
	secret, err := lookups.Secret(ctx, namespace, SecretResponderToken)
	switch {
	case err == nil && len(secret.Data["token"]) >= 32:
		return string(secret.Data["token"]), nil
	case err != nil && !apierrors.IsNotFound(err) && !errors.Is(err, ErrNotLookedUp):
		return "", fmt.Errorf("read %s/%s: %w", namespace, SecretResponderToken, err)
	}
	return randomSecret(), nil
}

// responderBundle is the CA and certificate already in the cluster while
// they still serve the responder's names for a while, or new ones.
func responderBundle(ctx context.Context, lookups Lookups, namespace string, now time.Time) (*pki.Bundle, error) {
	names := responderNames(namespace)
	secret, err := lookups.Secret(ctx, namespace, SecretResponderTLS)
	switch {
	case err == nil:
		b := &pki.Bundle{CACert: secret.Data["ca.crt"], Cert: secret.Data["tls.crt"], Key: secret.Data["tls.key"]}
		if pki.CheckServer(b, names, now) == nil {
			return b, nil
		}
	case !apierrors.IsNotFound(err) && !errors.Is(err, ErrNotLookedUp):
		return nil, fmt.Errorf("read %s/%s: %w", namespace, SecretResponderTLS, err)
	}
	b, err := pki.NewServer("falco-phantom-responder CA ("+namespace+")", names, now)
	if err != nil {
		return nil, fmt.Errorf("make the responder's certificate: %w", err)
	}
	return b, nil
}

// checkResponderTLS checks that the given Secret holds a certificate and
// its key, and the CA the mock SOAR needs to trust it.
func (s *settings) checkResponderTLS(ctx context.Context, lookups Lookups) error {
	name := s.ResponderTLSSecret
	secret, err := lookups.Secret(ctx, s.Namespace, name)
	switch {
	case errors.Is(err, ErrNotLookedUp):
		return nil
	case err != nil:
		return fields.Errorf("{ResponderTLSSecret} %s: %v", name, err)
	}
	var missing []string
	for _, key := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if len(secret.Data[key]) == 0 && (key != "ca.crt" || s.MockPhantom) {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		return fields.Errorf("{ResponderTLSSecret} %s lacks the keys %s (a certificate for %s, its key, and the CA callers trust)",
			name, strings.Join(missing, ", "), responderNames(s.Namespace)[2])
	}
	return nil
}
