package install

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// Redacted replaces secret values in what --dry-run prints.
const Redacted = "REDACTED"

// secretOf builds a Secret of this project with data.
func secretOf(namespace, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: managedLabels()},
		Type:       corev1.SecretTypeOpaque,
		StringData: data,
	}
}

// credentialSecret builds a Secret of SOAR credentials, with the keys the
// forwarder's chart mounts: user, password, token (those that are set).
func credentialSecret(namespace, name string, auth phantom.Auth) *corev1.Secret {
	data := map[string]string{}
	for key, value := range map[string]string{"user": auth.User, "password": auth.Password, "token": auth.Token} {
		if value != "" {
			data[key] = value
		}
	}
	return secretOf(namespace, name, data)
}

// redacted returns a copy of s with every value replaced by Redacted.
func redacted(s *corev1.Secret) *corev1.Secret {
	out := s.DeepCopy()
	for k := range out.StringData {
		out.StringData[k] = Redacted
	}
	for k := range out.Data {
		out.Data[k] = []byte(Redacted)
	}
	return out
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
