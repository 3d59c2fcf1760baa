package install

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/kubeless"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// Installer installs, upgrades and removes the pipeline.
type Installer struct {
	Helm helm.Client
	Kube kubernetes.Interface
	// Dynamic and APIExt are needed by the Kubeless runtime only.
	Dynamic dynamic.Interface
	APIExt  apiextclient.Interface
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// Result says what an install did.
type Result struct {
	Namespace  string          `json:"namespace"`
	Releases   []*helm.Release `json:"releases"`
	NATSURL    string          `json:"natsURL"`
	PhantomURL string          `json:"phantomURL"`
	Took       time.Duration   `json:"tookNanoseconds"`
}

func (in *Installer) progress(format string, args ...any) {
	if in.Progress != nil {
		fmt.Fprintf(in.Progress, format+"\n", args...)
	}
}

// Install applies every component in order, upgrading releases that exist,
// and with o.Wait waits for each to be ready before the next.
func (in *Installer) Install(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.PhantomSecret != "" {
		// Which keys it holds decides how the forwarder authenticates.
		s, err := in.Kube.CoreV1().Secrets(o.Namespace).Get(ctx, o.PhantomSecret, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("--phantom-secret %s: %w", o.PhantomSecret, err)
		}
		if len(s.Data["token"]) == 0 && (len(s.Data["user"]) == 0 || len(s.Data["password"]) == 0) {
			return nil, fmt.Errorf("--phantom-secret %s must hold the keys user and password, or token", o.PhantomSecret)
		}
		o.secretHasToken = len(s.Data["token"]) > 0
	}
	comps, err := o.components()
	if err != nil {
		return nil, err
	}
	if err := in.checkKubeless(o); err != nil {
		return nil, err
	}
	state, err := ReadState(ctx, in.Kube, o.Namespace)
	if err != nil {
		return nil, err
	}
	if state == nil {
		state = &State{}
	}
	created, err := in.ensureNamespace(ctx, o.Namespace)
	if err != nil {
		return nil, err
	}
	state.NamespaceCreated = state.NamespaceCreated || created
	o.describe(state)
	if err := in.applySecrets(ctx, o, state); err != nil {
		return nil, err
	}
	// Record before the releases: a failed install can still be uninstalled.
	for _, c := range comps {
		state.add(c.Name)
	}
	if err := writeState(ctx, in.Kube, o.Namespace, state); err != nil {
		return nil, err
	}
	res := &Result{Namespace: o.Namespace, NATSURL: o.natsURL(), PhantomURL: o.phantomURL()}
	for _, c := range comps {
		if c.Name == "falco" && o.Runtime == RuntimeKubeless {
			// The function first, so that Falco's first alerts find it.
			if err := in.applyKubeless(ctx, o, state); err != nil {
				_ = writeState(ctx, in.Kube, o.Namespace, state)
				return res, err
			}
		}
		in.progress("• %s: applying %s as release %s/%s", c.Name, c.Request.Chart, o.Namespace, c.Request.Name)
		rel, err := in.Helm.Apply(ctx, c.Request)
		if err != nil {
			return res, fmt.Errorf("%s: %w%s", c.Name, err, chartHint(c, err))
		}
		in.progress("  %s: release %s revision %d %s", c.Name, rel.Name, rel.Revision, rel.Status)
		res.Releases = append(res.Releases, rel)
		if o.Wait {
			if err := in.waitReady(ctx, c.Name, o.Namespace, rel.Manifest, o.Timeout); err != nil {
				return res, err
			}
		}
	}
	if o.Runtime == RuntimeKubeless && o.SkipFalco {
		if err := in.applyKubeless(ctx, o, state); err != nil {
			_ = writeState(ctx, in.Kube, o.Namespace, state)
			return res, err
		}
	}
	if err := writeState(ctx, in.Kube, o.Namespace, state); err != nil {
		return res, err
	}
	res.Took = time.Since(start)
	return res, nil
}

// chartHint suggests the offline flags when an upstream chart could not be
// downloaded.
func chartHint(c Component, err error) string {
	if c.Request.Chart.RepoURL == "" || !strings.Contains(err.Error(), "cannot get") {
		return ""
	}
	flag := "--nats-chart"
	if c.Name == "falco" {
		flag = "--falco-chart"
	}
	return fmt.Sprintf(" (offline or behind a proxy? download the chart elsewhere and pass %s ./%s-%s.tgz, or an oci:// reference)",
		flag, c.Request.Chart.Ref, c.Request.Chart.Version)
}

func (in *Installer) ensureNamespace(ctx context.Context, name string) (created bool, err error) {
	_, err = in.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return false, nil
	}
	if !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("look up namespace %s: %w", name, err)
	}
	ns := namespaceObject(name)
	if _, err := in.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create namespace %s: %w", name, err)
	}
	in.progress("• namespace %s created", name)
	return true, nil
}

func namespaceObject(name string) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: managedLabels()},
	}
}

// applySecrets writes the credential Secrets. Their values never go
// through Helm, so no release record holds them.
func (in *Installer) applySecrets(ctx context.Context, o Options, state *State) error {
	secrets := in.Kube.CoreV1().Secrets(o.Namespace)
	if len(o.NATSCreds) > 0 {
		if err := upsert(ctx, secrets, natsCredsSecret(o.Namespace, o.NATSCreds, false)); err != nil {
			return fmt.Errorf("write Secret %s/%s: %w", o.Namespace, SecretNATSCreds, err)
		}
		state.addSecret(SecretNATSCreds)
		in.progress("• NATS credentials stored in Secret %s/%s", o.Namespace, SecretNATSCreds)
	}
	if len(o.PhantomCA) > 0 {
		if err := upsert(ctx, secrets, caSecret(o.Namespace, o.PhantomCA)); err != nil {
			return fmt.Errorf("write Secret %s/%s: %w", o.Namespace, SecretSOARCA, err)
		}
		state.addSecret(SecretSOARCA)
	}
	auth := o.PhantomAuth
	if o.MockPhantom {
		mock, err := mockCredentials(ctx, in.Kube, o.Namespace)
		if err != nil {
			return err
		}
		if err := upsert(ctx, secrets, credentialSecret(o.Namespace, SecretMock, mock, false)); err != nil {
			return fmt.Errorf("write Secret %s/%s: %w", o.Namespace, SecretMock, err)
		}
		state.addSecret(SecretMock)
		auth = phantom.Auth{Token: mock.Token}
	}
	if o.PhantomSecret != "" {
		return nil // checked by Install
	}
	if err := upsert(ctx, secrets, credentialSecret(o.Namespace, SecretSOAR, auth, false)); err != nil {
		return fmt.Errorf("write Secret %s/%s: %w", o.Namespace, SecretSOAR, err)
	}
	state.addSecret(SecretSOAR)
	in.progress("• SOAR credentials stored in Secret %s/%s", o.Namespace, SecretSOAR)
	return nil
}

// describe records the options in the install record.
func (o *Options) describe(s *State) {
	s.NATSURL, s.PhantomURL, s.Mock, s.InsecureSkipTLSVerify = o.natsURL(), o.phantomURL(), o.MockPhantom, o.InsecureSkipTLSVerify
	s.Runtime = o.Runtime
	s.CredentialsSecret, s.CASecret = SecretSOAR, ""
	if o.PhantomSecret != "" {
		s.CredentialsSecret = o.PhantomSecret
	}
	if len(o.PhantomCA) > 0 {
		s.CASecret = SecretSOARCA
	}
}

// Render returns every manifest Install would apply, as YAML documents,
// without touching a cluster. Secret values are replaced by REDACTED.
func (in *Installer) Render(ctx context.Context, o Options) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	comps, err := o.components()
	if err != nil {
		return "", err
	}
	var docs []string
	add := func(obj any) error {
		// Through JSON to a map, so that empty status fields are left out.
		j, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(j, &m); err != nil {
			return err
		}
		delete(m, "status")
		b, err := yaml.Marshal(m)
		if err != nil {
			return err
		}
		docs = append(docs, strings.TrimSpace(string(b)))
		return nil
	}
	state := &State{NamespaceCreated: true}
	o.describe(state)
	objs := []any{namespaceObject(o.Namespace)}
	if len(o.NATSCreds) > 0 {
		objs = append(objs, natsCredsSecret(o.Namespace, o.NATSCreds, true))
		state.addSecret(SecretNATSCreds)
	}
	if len(o.PhantomCA) > 0 {
		objs = append(objs, caSecret(o.Namespace, o.PhantomCA))
		state.addSecret(SecretSOARCA)
	}
	auth := o.PhantomAuth
	if o.MockPhantom {
		objs = append(objs, credentialSecret(o.Namespace, SecretMock, phantom.Auth{User: "admin", Password: "x", Token: "x"}, true))
		auth = phantom.Auth{Token: "x"}
		state.addSecret(SecretMock)
	}
	if o.PhantomSecret == "" {
		objs = append(objs, credentialSecret(o.Namespace, SecretSOAR, auth, true))
		state.addSecret(SecretSOAR)
	}
	for _, c := range comps {
		state.add(c.Name)
	}
	cm, err := stateConfigMap(o.Namespace, state)
	if err != nil {
		return "", err
	}
	objs = append(objs, cm)
	if o.Runtime == RuntimeKubeless {
		for _, crd := range kubeless.CRDs() {
			objs = append(objs, crd)
		}
		for _, obj := range o.kubelessObjects() {
			objs = append(objs, obj.Object)
		}
	}
	for _, obj := range objs {
		if err := add(obj); err != nil {
			return "", err
		}
	}
	for _, c := range comps {
		manifest, err := in.Helm.Render(ctx, c.Request)
		if err != nil {
			return "", fmt.Errorf("%s: %w%s", c.Name, err, chartHint(c, err))
		}
		// Upstream charts may template Secrets of their own (falcosidekick's
		// holds its outputs' settings): their values are not printed either.
		manifest, err = redactSecrets(manifest)
		if err != nil {
			return "", fmt.Errorf("%s: %w", c.Name, err)
		}
		docs = append(docs, fmt.Sprintf("# Release %s/%s (%s)\n%s", o.Namespace, c.Request.Name, c.Name, manifest))
	}
	return strings.Join(docs, "\n---\n") + "\n", nil
}

// redactSecrets replaces each value of every Secret in a multi-document
// manifest by Redacted. The other documents are left as they are.
func redactSecrets(manifest string) (string, error) {
	const sep = "\n---\n"
	docs := strings.Split(manifest, sep)
	for i, doc := range docs {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil || m["kind"] != "Secret" {
			continue
		}
		for _, field := range []string{"data", "stringData"} {
			if values, ok := m[field].(map[string]any); ok {
				for k := range values {
					values[k] = Redacted
				}
			}
		}
		b, err := yaml.Marshal(m)
		if err != nil {
			return "", fmt.Errorf("redact Secret: %w", err)
		}
		// Keep the document marker and the "# Source:" comment.
		var head []string
		for _, line := range strings.Split(doc, "\n") {
			if !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "---") {
				break
			}
			head = append(head, line)
		}
		docs[i] = strings.Join(append(head, strings.TrimRight(string(b), "\n")), "\n")
	}
	return strings.Join(docs, sep), nil
}
