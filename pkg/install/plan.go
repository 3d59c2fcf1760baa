package install

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/fields"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/kubeless"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// Plan is everything an install makes exist, decided once by NewPlan:
// Apply applies it and Render prints it, so a dry run shows exactly what
// an install applies.
type Plan struct {
	Namespace string
	// CreateNamespace is true when the namespace does not exist yet (or,
	// planned without a cluster, is not known to).
	CreateNamespace bool
	// Secrets are written before the releases; their values never go
	// through Helm, so no release record holds them.
	Secrets []PlannedSecret
	// Record is the install record, written before the releases so that a
	// failed install can still be uninstalled.
	Record *State
	// Releases are applied in this order.
	Releases []Release
	// Kubeless is the Kubeless runtime's part; nil with the default runtime.
	Kubeless *KubelessPlan
	// NATSURL and PhantomURL are where the forwarder finds NATS and SOAR.
	NATSURL, PhantomURL string
	// Wait for each release to be ready, for at most Timeout.
	Wait    bool
	Timeout time.Duration
}

// PlannedSecret is a Secret to write, and what it holds, for people.
type PlannedSecret struct {
	Secret *corev1.Secret
	What   string
	// Public data (CA certificates) is printed by Render; anything else is
	// redacted.
	Public bool
}

// Release is a component's Helm release with its values.
type Release struct {
	Component Component
	Request   helm.Request
}

// KubelessPlan is what the Kubeless runtime adds: Kubeless's own
// controllers (only with InstallKubeless), its CRDs where they are missing,
// the Function and one NATSTrigger per subject.
type KubelessPlan struct {
	Manifests []string
	CRDs      []*apiextv1.CustomResourceDefinition
	Objects   []*unstructured.Unstructured
}

// Release returns the plan's release of c, or nil.
func (p *Plan) Release(c Component) *Release {
	for i := range p.Releases {
		if p.Releases[i].Component == c {
			return &p.Releases[i]
		}
	}
	return nil
}

// Lookups is what a plan needs to know of the cluster.
type Lookups interface {
	// NamespaceExists tells whether the namespace exists.
	NamespaceExists(ctx context.Context, name string) (bool, error)
	// Secret returns a Secret: a NotFound error when there is none, and
	// ErrNotLookedUp when the cluster is not asked.
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	// Record returns the namespace's install record, nil when there is none.
	Record(ctx context.Context, namespace string) (*State, error)
}

// ErrNotLookedUp is what Offline answers for what it cannot know.
var ErrNotLookedUp = errors.New("not looked up: planned without a cluster")

// Offline plans without a cluster (--dry-run): the namespace is new,
// there is no install record, and Secrets are not known. A plan made
// offline assumes that an existing Secret given for SOAR's credentials
// holds a user and a password, and makes up the mock SOAR's credentials.
var Offline Lookups = offline{}

type offline struct{}

func (offline) NamespaceExists(context.Context, string) (bool, error) { return false, nil }
func (offline) Secret(context.Context, string, string) (*corev1.Secret, error) {
	return nil, ErrNotLookedUp
}
func (offline) Record(context.Context, string) (*State, error) { return nil, nil }

// Online asks the cluster.
func Online(kube kubernetes.Interface) Lookups { return online{kube} }

type online struct{ kube kubernetes.Interface }

func (l online) NamespaceExists(ctx context.Context, name string) (bool, error) {
	_, err := l.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
		// Forbidden: a user who may not read it is asked for the right to
		// create it (see Preflight).
		return false, nil
	}
	return false, fmt.Errorf("look up namespace %s: %w", name, err)
}

func (l online) namespaceKnown(ctx context.Context, name string) (exists, known bool, err error) {
	_, err = l.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return true, true, nil
	case apierrors.IsNotFound(err):
		return false, true, nil
	case apierrors.IsForbidden(err):
		return false, false, nil
	}
	return false, false, fmt.Errorf("look up namespace %s: %w", name, err)
}

func (l online) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	return l.kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (l online) Record(ctx context.Context, namespace string) (*State, error) {
	return ReadState(ctx, l.kube, namespace)
}

// NewPlan checks o and decides what an install makes exist. It is the only
// place that does. Errors about options are fields.List or *fields.Error.
func NewPlan(ctx context.Context, o Options, lookups Lookups) (*Plan, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &settings{Options: o, natsURL: o.natsURL(), phantomURL: o.phantomURL(), credentialsSecret: SecretSOAR}
	p := &Plan{Namespace: o.Namespace, NATSURL: s.natsURL, PhantomURL: s.phantomURL, Wait: o.Wait, Timeout: o.Timeout}

	exists, err := lookups.NamespaceExists(ctx, o.Namespace)
	if err != nil {
		return nil, err
	}
	p.CreateNamespace = !exists
	if err := s.planSecrets(ctx, p, lookups); err != nil {
		return nil, err
	}
	if o.Responder {
		if err := s.planResponder(ctx, p, lookups); err != nil {
			return nil, err
		}
	}
	if p.Releases, err = s.releases(); err != nil {
		return nil, err
	}
	if o.Runtime == RuntimeKubeless {
		p.Kubeless = &KubelessPlan{CRDs: kubeless.CRDs(), Objects: s.kubelessObjects()}
		if o.InstallKubeless {
			p.Kubeless.Manifests = o.KubelessManifests
		}
	}

	record, err := lookups.Record(ctx, o.Namespace)
	if err != nil {
		return nil, err
	}
	if record == nil {
		record = &State{}
	}
	record.NamespaceCreated = record.NamespaceCreated || p.CreateNamespace
	record.NATSURL, record.PhantomURL, record.Mock = s.natsURL, s.phantomURL, o.MockPhantom
	record.InsecureSkipTLSVerify, record.Runtime = o.InsecureSkipTLSVerify, o.Runtime
	record.CredentialsSecret, record.CASecret = s.credentialsSecret, s.caSecret
	if o.Responder {
		record.Responder = &ResponderState{
			Namespaces: o.ResponderNamespaces, Actions: o.ResponderActions, URL: ResponderURL(o.Namespace),
			TLSSecret: s.responderTLS, TokenSecret: SecretResponderToken,
		}
	}
	for _, ps := range p.Secrets {
		record.addSecret(ps.Secret.Name)
	}
	for _, r := range p.Releases {
		record.add(r.Component)
	}
	p.Record = record
	return p, nil
}

// planSecrets decides the credential Secrets, and with them how the
// forwarder authenticates.
func (s *settings) planSecrets(ctx context.Context, p *Plan, lookups Lookups) error {
	ns := s.Namespace
	add := func(what string, public bool, secret *corev1.Secret) {
		p.Secrets = append(p.Secrets, PlannedSecret{Secret: secret, What: what, Public: public})
	}
	if len(s.NATSCreds) > 0 {
		s.natsCredsSecret = SecretNATSCreds
		add("NATS credentials", false, secretOf(ns, SecretNATSCreds, map[string]string{"nats.creds": string(s.NATSCreds)}))
	}
	if len(s.PhantomCA) > 0 {
		s.caSecret = SecretSOARCA
		add("SOAR's CA certificates", true, secretOf(ns, SecretSOARCA, map[string]string{"ca.crt": string(s.PhantomCA)}))
	}
	auth := s.PhantomAuth
	if s.MockPhantom {
		mock, err := mockCredentials(ctx, lookups, ns)
		if err != nil {
			return err
		}
		add("the mock SOAR's credentials", false, credentialSecret(ns, SecretMock, mock))
		auth = phantom.Auth{Token: mock.Token}
	}
	if s.PhantomSecret == "" {
		s.tokenAuth = auth.Token != ""
		add("SOAR credentials", false, credentialSecret(ns, SecretSOAR, auth))
		return nil
	}
	// The user's own Secret: which keys it holds decides how the forwarder
	// authenticates.
	s.credentialsSecret = s.PhantomSecret
	secret, err := lookups.Secret(ctx, ns, s.PhantomSecret)
	switch {
	case errors.Is(err, ErrNotLookedUp):
		return nil // user and password, as far as anyone can tell
	case err != nil:
		return fields.Errorf("{PhantomSecret} %s: %v", s.PhantomSecret, err)
	case len(secret.Data["token"]) == 0 && (len(secret.Data["user"]) == 0 || len(secret.Data["password"]) == 0):
		return fields.Errorf("{PhantomSecret} %s must hold the keys user and password, or token", s.PhantomSecret)
	}
	s.tokenAuth = len(secret.Data["token"]) > 0
	return nil
}

// mockCredentials returns the mock SOAR's credentials: those already in
// the cluster, so that a re-install keeps them, or new random ones.
func mockCredentials(ctx context.Context, lookups Lookups, namespace string) (phantom.Auth, error) {
	s, err := lookups.Secret(ctx, namespace, SecretMock)
	switch {
	case err == nil && len(s.Data["password"]) > 0 && len(s.Data["token"]) > 0:
		return phantom.Auth{User: string(s.Data["user"]), Password: string(s.Data["password"]), Token: string(s.Data["token"])}, nil
	case err != nil && !apierrors.IsNotFound(err) && !errors.Is(err, ErrNotLookedUp):
		return phantom.Auth{}, fmt.Errorf("read %s/%s: %w", namespace, SecretMock, err)
	}
	return phantom.Auth{User: "admin", Password: randomSecret(), Token: randomSecret()}, nil
}

func randomSecret() string { return rand.Text() + rand.Text() }
