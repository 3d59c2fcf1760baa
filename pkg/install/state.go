package install

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/version"
)

// State is what install created in a namespace. It is kept in the
// ConfigMap StateConfigMap and holds no secret.
type State struct {
	// NamespaceCreated is true when install created the namespace, so
	// uninstall may delete it.
	NamespaceCreated bool `json:"namespaceCreated"`
	// Components installed, by name: nats, mockphantom, forwarder, falco.
	Components []string `json:"components"`
	// Secrets install created.
	Secrets    []string `json:"secrets"`
	NATSURL    string   `json:"natsURL"`
	PhantomURL string   `json:"phantomURL"`
	Mock       bool     `json:"mockPhantom"`
	// CredentialsSecret holds the forwarder's SOAR credentials.
	CredentialsSecret string `json:"credentialsSecret"`
	// CASecret holds CA certificates to trust for SOAR, if any.
	CASecret              string `json:"caSecret,omitempty"`
	InsecureSkipTLSVerify bool   `json:"insecureSkipTLSVerify,omitempty"`
	// Runtime of the forwarder; the Kubeless objects and CRDs install created.
	Runtime         string    `json:"runtime,omitempty"`
	KubelessObjects []string  `json:"kubelessObjects,omitempty"`
	KubelessCRDs    []string  `json:"kubelessCRDs,omitempty"`
	Version         string    `json:"installedBy"`
	Updated         time.Time `json:"updated"`
}

// Has reports whether component was installed.
func (s *State) Has(component string) bool { return slices.Contains(s.Components, component) }

func (s *State) add(component string) {
	if !s.Has(component) {
		s.Components = append(s.Components, component)
	}
}

func (s *State) addCRD(name string) {
	if !slices.Contains(s.KubelessCRDs, name) {
		s.KubelessCRDs = append(s.KubelessCRDs, name)
	}
}

func (s *State) addKubelessObject(ref string) {
	if !slices.Contains(s.KubelessObjects, ref) {
		s.KubelessObjects = append(s.KubelessObjects, ref)
	}
}

func (s *State) addSecret(name string) {
	if !slices.Contains(s.Secrets, name) {
		s.Secrets = append(s.Secrets, name)
	}
}

// ReadState returns the state of namespace, or nil when install never ran there.
func ReadState(ctx context.Context, kube kubernetes.Interface, namespace string) (*State, error) {
	cm, err := kube.CoreV1().ConfigMaps(namespace).Get(ctx, StateConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read install record %s/%s: %w", namespace, StateConfigMap, err)
	}
	var s State
	if err := json.Unmarshal([]byte(cm.Data["state.json"]), &s); err != nil {
		return nil, fmt.Errorf("install record %s/%s is damaged: %w", namespace, StateConfigMap, err)
	}
	return &s, nil
}

func stateConfigMap(namespace string, s *State) (*corev1.ConfigMap, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: StateConfigMap, Namespace: namespace, Labels: managedLabels()},
		Data:       map[string]string{"state.json": string(b)},
	}, nil
}

func writeState(ctx context.Context, kube kubernetes.Interface, namespace string, s *State) error {
	s.Version, s.Updated = version.Version, time.Now().UTC().Truncate(time.Second)
	cm, err := stateConfigMap(namespace, s)
	if err != nil {
		return err
	}
	if err := upsert(ctx, kube.CoreV1().ConfigMaps(namespace), cm); err != nil {
		return fmt.Errorf("record install in %s/%s: %w", namespace, StateConfigMap, err)
	}
	return nil
}

func managedLabels() map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, "app.kubernetes.io/part-of": "falco-phantom"}
}

// client is the part of a typed client upsert needs.
type client[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

type object interface {
	*corev1.ConfigMap | *corev1.Secret
	GetName() string
	SetResourceVersion(string)
	GetResourceVersion() string
}

// upsert creates obj, or replaces the existing one.
func upsert[T object](ctx context.Context, c client[T], obj T) error {
	old, err := c.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.Create(ctx, obj, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	obj.SetResourceVersion(old.GetResourceVersion())
	_, err = c.Update(ctx, obj, metav1.UpdateOptions{})
	return err
}

// Redacted replaces secret values in what --dry-run prints.
const Redacted = "REDACTED"

// credentialSecret builds a Secret of SOAR credentials. With redact, the
// values are replaced (for --dry-run).
func credentialSecret(namespace, name string, auth phantom.Auth, redact bool) *corev1.Secret {
	data := map[string]string{}
	set := func(key, value string) {
		if value == "" {
			return
		}
		if redact {
			value = Redacted
		}
		data[key] = value
	}
	set("user", auth.User)
	set("password", auth.Password)
	set("token", auth.Token)
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: managedLabels()},
		Type:       corev1.SecretTypeOpaque,
		StringData: data,
	}
}

// natsCredsSecret holds a NATS credentials file, under the key the
// forwarder chart mounts.
func natsCredsSecret(namespace string, creds []byte, redact bool) *corev1.Secret {
	value := string(creds)
	if redact {
		value = Redacted
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: SecretNATSCreds, Namespace: namespace, Labels: managedLabels()},
		Type:       corev1.SecretTypeOpaque,
		StringData: map[string]string{"nats.creds": value},
	}
}

// caSecret holds CA certificates (public data) to trust for SOAR.
func caSecret(namespace string, pem []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: SecretSOARCA, Namespace: namespace, Labels: managedLabels()},
		Type:       corev1.SecretTypeOpaque,
		StringData: map[string]string{"ca.crt": string(pem)},
	}
}

// mockCredentials returns the mock SOAR's credentials: those already in
// the cluster, so that a re-install keeps them, or new random ones.
func mockCredentials(ctx context.Context, kube kubernetes.Interface, namespace string) (phantom.Auth, error) {
	s, err := kube.CoreV1().Secrets(namespace).Get(ctx, SecretMock, metav1.GetOptions{})
	if err == nil && len(s.Data["password"]) > 0 && len(s.Data["token"]) > 0 {
		return phantom.Auth{User: string(s.Data["user"]), Password: string(s.Data["password"]), Token: string(s.Data["token"])}, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return phantom.Auth{}, fmt.Errorf("read %s/%s: %w", namespace, SecretMock, err)
	}
	return phantom.Auth{User: "admin", Password: randomSecret(), Token: randomSecret()}, nil
}

func randomSecret() string { return rand.Text() + rand.Text() }
