package helm_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
)

var (
	apiServer *testkit.APIServer
	noAPIWhy  string
)

func TestMain(m *testing.M) { testkit.RunWithAPIServer(m, &apiServer, &noAPIWhy) }

// A release's objects that name no namespace go to the release's
// namespace, whatever the kubeconfig's namespace is, as with helm -n.
func TestApplyGetUninstall(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	ctx := context.Background()
	const ns = "helm-test"
	if _, err := apiServer.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &apiServer.Kubeconfig
	c := helm.New(flags, nil)
	req := helm.Request{Name: "tiny", Namespace: ns, Chart: helm.Chart{Files: os.DirFS("testdata/tiny")}, Values: map[string]any{"greeting": "hi"}}

	rendered, err := c.Render(ctx, req)
	if err != nil || !strings.Contains(rendered, `greeting: "hi"`) {
		t.Fatalf("Render = %q, %v", rendered, err)
	}
	if strings.Contains(rendered, "tiny-test") {
		t.Errorf("Render shows the test hook, which an install never creates:\n%s", rendered)
	}
	if rel, err := c.Get(ctx, "tiny", ns); err != nil || rel != nil {
		t.Fatalf("Get before install = %v, %v; want nil, nil", rel, err)
	}
	rel, err := c.Apply(ctx, req)
	if err != nil || rel.Revision != 1 || rel.Status != "deployed" || rel.Chart != "tiny" {
		t.Fatalf("install = %+v, %v", rel, err)
	}
	cm, err := apiServer.Kube.CoreV1().ConfigMaps(ns).Get(ctx, "tiny-greeting", metav1.GetOptions{})
	if err != nil || cm.Data["greeting"] != "hi" {
		t.Fatalf("object not in the release namespace %s: %v %v", ns, cm, err)
	}
	req.Values["greeting"] = "hello again"
	if rel, err = c.Apply(ctx, req); err != nil || rel.Revision != 2 {
		t.Fatalf("upgrade = %+v, %v", rel, err)
	}
	got, err := c.Get(ctx, "tiny", ns)
	if err != nil || got.Revision != 2 || !strings.Contains(got.Manifest, "hello again") || strings.Contains(got.Manifest, "tiny-test") {
		t.Errorf("Get = %+v, %v", got, err)
	}
	if _, err := apiServer.Kube.CoreV1().Pods(ns).Get(ctx, "tiny-test", metav1.GetOptions{}); err == nil {
		t.Error("install created the test hook's pod")
	}
	if err := c.Uninstall(ctx, "tiny", ns); err != nil {
		t.Fatal(err)
	}
	if err := c.Uninstall(ctx, "tiny", ns); err != nil {
		t.Errorf("second uninstall: %v, want nothing to do", err)
	}
	if _, err := apiServer.Kube.CoreV1().ConfigMaps(ns).Get(ctx, "tiny-greeting", metav1.GetOptions{}); err == nil {
		t.Error("uninstall left the object")
	}
}

func TestSetValues(t *testing.T) {
	t.Parallel()
	v := map[string]any{"a": map[string]any{"b": "keep"}}
	if err := helm.SetValues(v, []string{"a.c=1", "list={x,y}", "tty=true"}); err != nil {
		t.Fatal(err)
	}
	a := v["a"].(map[string]any)
	if a["b"] != "keep" || fmt.Sprint(a["c"]) != "1" || fmt.Sprint(v["list"]) != "[x y]" || v["tty"] != true {
		t.Errorf("values = %v", v)
	}
	if err := helm.SetValues(v, []string{"a.b.c"}); err == nil {
		t.Error("an assignment without = was accepted")
	}
}
