package install

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
)

// access is one permission install needs.
type access struct {
	verb, group, resource string
	// clusterWide is true for cluster-scoped resources.
	clusterWide bool
	// namespace is where a namespaced resource is, when not in the
	// install namespace (the responder's Roles in the namespaces it acts in).
	namespace string
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	return a.verb + " " + r
}

// ownNeeds are the permissions of what install writes itself: the
// namespace, its Secrets and its record.
func (p *Plan) ownNeeds() []access {
	var out []access
	if p.CreateNamespace {
		out = append(out, access{"create", "", "namespaces", true, ""})
	}
	for _, r := range []string{"secrets", "configmaps"} {
		out = append(out, access{"create", "", r, false, ""}, access{"update", "", r, false, ""})
	}
	return out
}

// chartNeeds are the permissions of the releases: create and patch of
// every kind of object they hold, as their charts render with the plan's
// values (Helm creates them on install and patches them on upgrade). Kinds
// the cluster does not serve are problems of their own.
func (in *Installer) chartNeeds(ctx context.Context, p *Plan) (needs []access, problems []string, err error) {
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(in.Kube.Discovery()))
	for _, r := range p.Releases {
		manifest, err := in.Helm.Render(ctx, r.Request)
		if err != nil {
			return nil, nil, releaseError(r, err)
		}
		kinds, err := objectKinds(manifest)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", r.Component, err)
		}
		for _, k := range kinds {
			gvk := k.gvk
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			switch {
			case meta.IsNoMatchError(err):
				problems = append(problems, fmt.Sprintf("%s: the cluster serves no %s %s%s", r.Component, gvk.GroupVersion(), gvk.Kind, kindHint(gvk)))
				continue
			case err != nil:
				return nil, nil, fmt.Errorf("%s: look up %s: %w", r.Component, gvk, err)
			}
			clusterWide := m.Scope.Name() == meta.RESTScopeNameRoot
			ns := k.namespace
			if clusterWide || ns == p.Namespace {
				ns = ""
			}
			for _, verb := range []string{"create", "patch"} {
				if a := (access{verb, m.Resource.Group, m.Resource.Resource, clusterWide, ns}); !slices.Contains(needs, a) {
					needs = append(needs, a)
				}
			}
		}
	}
	return needs, problems, nil
}

// kindHint says what serves a kind install may ask for.
func kindHint(gvk schema.GroupVersionKind) string {
	if gvk.Group == "keda.sh" {
		return " (install KEDA first, or leave out --keda)"
	}
	return ""
}

// objectKind is a kind of object a manifest holds, in the namespace its
// objects name ("" for the release's).
type objectKind struct {
	gvk       schema.GroupVersionKind
	namespace string
}

// objectKinds lists the kinds of the objects in a rendered manifest, each
// once per namespace, in order (the manifest holds no test hooks: pkg/helm
// leaves them out, since an install does not create them).
func objectKinds(manifest string) ([]objectKind, error) {
	var out []objectKind
	dec := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		var obj struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096).Decode(&obj); err != nil || obj.Kind == "" {
			continue // comments only
		}
		gv, err := schema.ParseGroupVersion(obj.APIVersion)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obj.Kind, err)
		}
		if k := (objectKind{gv.WithKind(obj.Kind), obj.Metadata.Namespace}); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
}

// Preflight checks, before anything is read or changed, that the cluster
// can take what installing o creates and that the current user may create
// it: first what needs no chart (Kubeless's controllers, what install
// writes itself), then the objects of every release as its chart renders
// them. Each problem is reported in one line saying what to fix. It plans
// o knowing only whether the namespace exists: reading the Secrets may
// itself be forbidden.
func (in *Installer) Preflight(ctx context.Context, o Options) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	p, err := NewPlan(ctx, o, namespaceOnly{online{in.Kube}})
	if err != nil {
		return err
	}
	if err := in.checkKubeless(p); err != nil {
		return err
	}
	if err := in.allowed(ctx, p.Namespace, p.ownNeeds()); err != nil {
		return err
	}
	needs, problems, err := in.chartNeeds(ctx, p)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return in.allowed(ctx, p.Namespace, needs)
}

// allowed asks the API server whether the current user has each access,
// and names those it lacks.
func (in *Installer) allowed(ctx context.Context, namespace string, needs []access) error {
	var denied []string
	for _, a := range needs {
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authv1.ResourceAttributes{Verb: a.verb, Group: a.group, Resource: a.resource},
		}}
		where := "in namespace " + namespace
		switch {
		case a.clusterWide:
			where = "cluster-wide"
		case a.namespace != "":
			review.Spec.ResourceAttributes.Namespace, where = a.namespace, "in namespace "+a.namespace
		default:
			review.Spec.ResourceAttributes.Namespace = namespace
		}
		res, err := in.Kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("check permissions: %w", err)
		}
		if !res.Status.Allowed {
			denied = append(denied, a.String()+" ("+where+")")
		}
	}
	if len(denied) > 0 {
		return errors.New("missing permissions: " + strings.Join(denied, ", ") +
			": ask a cluster admin, or use a --context with more rights")
	}
	return nil
}

// namespaceOnly asks the cluster whether the namespace exists, and nothing
// else.
type namespaceOnly struct{ online }

func (namespaceOnly) Secret(context.Context, string, string) (*corev1.Secret, error) {
	return nil, ErrNotLookedUp
}

func (namespaceOnly) Record(context.Context, string) (*State, error) { return nil, nil }
