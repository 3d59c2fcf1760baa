package install

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/version"
)

// State is what install created in a namespace. It is kept in the
// ConfigMap StateConfigMap and holds no secret.
type State struct {
	// NamespaceCreated is true when install created the namespace, so
	// uninstall may delete it.
	NamespaceCreated bool `json:"namespaceCreated"`
	// Components installed.
	Components []Component `json:"components"`
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
	// Responder is how the responder was installed, if it was.
	Responder *ResponderState `json:"responder,omitempty"`
	// Runtime of the forwarder; the Kubeless objects and CRDs install created.
	Runtime         Runtime   `json:"runtime,omitempty"`
	KubelessObjects []string  `json:"kubelessObjects,omitempty"`
	KubelessCRDs    []string  `json:"kubelessCRDs,omitempty"`
	Version         string    `json:"installedBy"`
	Updated         time.Time `json:"updated"`
}

// ResponderState is how the responder was installed.
type ResponderState struct {
	// Namespaces and Actions are what it may act in and do.
	Namespaces []string         `json:"namespaces"`
	Actions    []respond.Action `json:"actions"`
	// URL is its address inside the cluster.
	URL string `json:"url"`
	// TLSSecret holds its certificate (and the CA callers trust),
	// TokenSecret the bearer token callers send.
	TLSSecret   string `json:"tlsSecret"`
	TokenSecret string `json:"tokenSecret"`
}

// Has reports whether component was installed.
func (s *State) Has(component Component) bool { return slices.Contains(s.Components, component) }

func (s *State) add(component Component) {
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
