package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/poll"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/kubeless"
)

// DefaultKubelessManifests are the published manifests of Kubeless's last
// releases (pinned images inside), applied by --install-kubeless on
// clusters older than 1.22, the only ones where they can run.
var DefaultKubelessManifests = []string{
	"https://github.com/kubeless/kubeless/releases/download/" + kubeless.LastRelease + "/kubeless-" + kubeless.LastRelease + ".yaml",
	"https://github.com/kubeless/kubeless/releases/download/" + kubeless.LastRelease + "/nats-" + kubeless.NATSTriggerRelease + ".yaml",
}

// kubelessObjects are the Function and one NATSTrigger per subject.
func (s *settings) kubelessObjects() []*unstructured.Unstructured {
	env := map[string]string{
		"PHANTOM_BASE_URL": s.phantomURL, "PHANTOM_LABEL": s.PhantomLabel,
		"VERIFY_SSL": fmt.Sprint(!s.InsecureSkipTLSVerify), "GROUP_WINDOW": s.GroupWindow.String(),
	}
	if s.tokenAuth {
		env["PHANTOM_TOKEN_FILE"] = "/etc/falco-phantom/soar/token"
	} else {
		env["PHANTOM_USER_FILE"], env["PHANTOM_PASSWORD_FILE"] = "/etc/falco-phantom/soar/user", "/etc/falco-phantom/soar/password"
	}
	spec := kubeless.FunctionSpec{
		Namespace: s.Namespace, Env: env, CredentialsSecret: s.credentialsSecret, CASecret: s.caSecret,
		Image: images.Ref(s.imageRegistry(), images.ForwarderRepo, s.ImageTag),
	}
	if s.caSecret != "" {
		env["PHANTOM_CA_FILE"] = "/etc/falco-phantom/soar-ca/ca.crt"
	}
	out := []*unstructured.Unstructured{kubeless.Function(spec)}
	for i, subject := range s.Subjects {
		out = append(out, kubeless.Trigger(s.Namespace, i, subject))
	}
	return out
}

// checkKubeless refuses to install Kubeless's controllers where they
// cannot run.
func (in *Installer) checkKubeless(p *Plan) error {
	if p.Kubeless == nil || len(p.Kubeless.Manifests) == 0 {
		return nil
	}
	v, err := in.Kube.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("read the cluster's version: %w", err)
	}
	return kubeless.ControllersCanRun(v.Major, v.Minor)
}

// applyKubeless installs the Kubeless side: the controllers (only when
// asked, only where they can run), the CRDs when missing, the Function and
// the triggers; state records what it created.
func (in *Installer) applyKubeless(ctx context.Context, p *Plan, state *State) error {
	if in.Dynamic == nil || in.APIExt == nil {
		return errors.New("the Kubeless runtime needs a dynamic and an apiextensions client")
	}
	k := p.Kubeless
	if len(k.Manifests) > 0 {
		for _, m := range k.Manifests {
			in.progress("• kubeless: applying %s", m)
			if err := in.applyManifest(ctx, m); err != nil {
				return fmt.Errorf("kubeless manifest %s: %w", m, err)
			}
		}
	}
	for _, crd := range k.CRDs {
		_, err := in.APIExt.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("look up CRD %s: %w", crd.Name, err)
		}
		if _, err := in.APIExt.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create CRD %s: %w", crd.Name, err)
		}
		if err := in.waitEstablished(ctx, crd.Name); err != nil {
			return err
		}
		in.progress("• kubeless: created CRD %s", crd.Name)
		state.addCRD(crd.Name)
	}
	for _, obj := range k.Objects {
		gvr := kubeless.NATSTriggers
		if obj.GetKind() == "Function" {
			gvr = kubeless.Functions
		}
		_, err := in.Dynamic.Resource(gvr).Namespace(p.Namespace).Apply(ctx, obj.GetName(), obj,
			metav1.ApplyOptions{FieldManager: ManagedBy, Force: true})
		if err != nil {
			return fmt.Errorf("apply %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		in.progress("• kubeless: applied %s %s/%s", obj.GetKind(), p.Namespace, obj.GetName())
		state.addKubelessObject(obj.GetKind() + "/" + obj.GetName())
	}
	if len(k.Manifests) == 0 {
		in.progress("  note: a Kubeless controller must run to turn these into a Deployment and a NATS subscription; " +
			"none can run on Kubernetes 1.22 or newer (see docs/kubeless.md)")
	}
	return nil
}

func (in *Installer) waitEstablished(ctx context.Context, name string) error {
	err := poll.Until(ctx, 30*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		crd, err := in.APIExt.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue {
				return nil
			}
		}
		return errors.New("not established yet")
	})
	if err != nil {
		return fmt.Errorf("CRD %s: %w", name, err)
	}
	return nil
}

// applyManifest applies every object of a YAML file or URL with
// server-side apply.
func (in *Installer) applyManifest(ctx context.Context, source string) error {
	data, err := readManifest(ctx, source)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(in.Kube.Discovery()))
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvk := obj.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
		}
		var ri dynamic.ResourceInterface = in.Dynamic.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := obj.GetNamespace()
			if ns == "" {
				ns = "default"
			}
			ri = in.Dynamic.Resource(mapping.Resource).Namespace(ns)
		}
		if _, err := ri.Apply(ctx, obj.GetName(), &obj, metav1.ApplyOptions{FieldManager: ManagedBy, Force: true}); err != nil {
			return fmt.Errorf("apply %s %s: %w", gvk.Kind, obj.GetName(), err)
		}
	}
}

func readManifest(ctx context.Context, source string) ([]byte, error) {
	if !strings.HasPrefix(source, "https://") && !strings.HasPrefix(source, "http://") {
		return os.ReadFile(source)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, source, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download (offline? pass the file with --kubeless-manifest): %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download: HTTP %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 16<<20))
}

// deleteKubeless removes the Function and triggers install created, and
// the CRDs it created when no other object of theirs is left.
func (in *Installer) deleteKubeless(ctx context.Context, namespace string, state *State) error {
	if len(state.KubelessObjects) == 0 && len(state.KubelessCRDs) == 0 {
		return nil
	}
	if in.Dynamic == nil || in.APIExt == nil {
		return errors.New("removing the Kubeless runtime needs a dynamic and an apiextensions client")
	}
	var errs []error
	for _, ref := range state.KubelessObjects {
		kind, name, _ := strings.Cut(ref, "/")
		gvr := kubeless.NATSTriggers
		if kind == "Function" {
			gvr = kubeless.Functions
		}
		err := in.Dynamic.Resource(gvr).Namespace(namespace).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", ref, err))
			continue
		}
		in.progress("• kubeless: deleted %s", ref)
	}
	for _, name := range state.KubelessCRDs {
		gvr := kubeless.Functions
		if strings.HasPrefix(name, "natstriggers.") {
			gvr = kubeless.NATSTriggers
		}
		list, err := in.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil && len(list.Items) > 0 {
			in.progress("  kubeless: kept CRD %s: other objects use it", name)
			continue
		}
		if err := in.APIExt.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete CRD %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
