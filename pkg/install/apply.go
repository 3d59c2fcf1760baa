package install

import (
	"context"
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

	"github.com/falco-phantom/kubectl-falco-phantom/internal/fields"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
)

// Installer applies plans, and removes what they applied.
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

// Install plans o against the cluster and applies the plan.
func (in *Installer) Install(ctx context.Context, o Options) (*Result, error) {
	p, err := NewPlan(ctx, o, Online(in.Kube))
	if err != nil {
		return nil, err
	}
	return in.Apply(ctx, p)
}

// Apply makes the plan exist: the namespace, the Secrets, the install
// record, then every release in order, upgrading those that exist, and
// with p.Wait waiting for each to be ready before the next.
func (in *Installer) Apply(ctx context.Context, p *Plan) (*Result, error) {
	start := time.Now()
	if err := in.checkKubeless(p); err != nil {
		return nil, err
	}
	created, err := in.ensureNamespace(ctx, p.Namespace)
	if err != nil {
		return nil, err
	}
	record := p.Record
	record.NamespaceCreated = record.NamespaceCreated || created
	secrets := in.Kube.CoreV1().Secrets(p.Namespace)
	for _, ps := range p.Secrets {
		if err := upsert(ctx, secrets, ps.Secret); err != nil {
			return nil, fmt.Errorf("write Secret %s/%s: %w", p.Namespace, ps.Secret.Name, err)
		}
		in.progress("• %s stored in Secret %s/%s", ps.What, p.Namespace, ps.Secret.Name)
	}
	if err := writeState(ctx, in.Kube, p.Namespace, record); err != nil {
		return nil, err
	}
	res := &Result{Namespace: p.Namespace, NATSURL: p.NATSURL, PhantomURL: p.PhantomURL}
	kubelessDone := p.Kubeless == nil
	applyKubeless := func() error {
		kubelessDone = true
		if err := in.applyKubeless(ctx, p, record); err != nil {
			_ = writeState(ctx, in.Kube, p.Namespace, record)
			return err
		}
		return nil
	}
	for _, r := range p.Releases {
		if r.Component == Falco && !kubelessDone {
			// The function first, so that Falco's first alerts find it.
			if err := applyKubeless(); err != nil {
				return res, err
			}
		}
		in.progress("• %s: applying %s as release %s/%s", r.Component, r.Request.Chart, p.Namespace, r.Request.Name)
		rel, err := in.Helm.Apply(ctx, r.Request)
		if err != nil {
			return res, releaseError(r, err)
		}
		in.progress("  %s: release %s revision %d %s", r.Component, rel.Name, rel.Revision, rel.Status)
		res.Releases = append(res.Releases, rel)
		if p.Wait {
			if err := in.waitReady(ctx, string(r.Component), p.Namespace, rel.Manifest, p.Timeout); err != nil {
				return res, err
			}
		}
	}
	if !kubelessDone {
		if err := applyKubeless(); err != nil {
			return res, err
		}
	}
	if err := writeState(ctx, in.Kube, p.Namespace, record); err != nil {
		return res, err
	}
	res.Took = time.Since(start)
	return res, nil
}

// releaseError says which component failed, and suggests the offline
// options when an upstream chart could not be downloaded.
func releaseError(r Release, err error) error {
	if r.Request.Chart.RepoURL == "" || !strings.Contains(err.Error(), "cannot get") {
		return fmt.Errorf("%s: %w", r.Component, err)
	}
	field := "{NATSChart}"
	if r.Component == Falco {
		field = "{FalcoChart}"
	}
	return fields.Errorf("%s: %v (offline or behind a proxy? download the chart elsewhere and pass "+field+" ./%s-%s.tgz, or an oci:// reference)",
		r.Component, err, r.Request.Chart.Ref, r.Request.Chart.Version)
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
