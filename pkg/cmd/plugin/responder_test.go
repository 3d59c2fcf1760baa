package plugin_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/pki"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// install --responder deploys the responder with its Secrets and RBAC and
// wires the mock's playbook to it; status shows it with the isolated
// pods; uninstall removes it but leaves isolation in place, unless
// --release-isolated.
func TestResponderInstallStatusUninstall(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	ctx := context.Background()
	kube, kc := apiServer.Kube, apiServer.Kubeconfig
	// Both namespaces exist before: uninstall keeps them, so the second
	// install below finds them usable (no namespace controller runs here).
	const ns, shop = "fp-responder", "fp-shop"
	for _, n := range []string{ns, shop} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kube.CoreV1().Pods(shop).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	args := []string{"install", "-n", ns, "--mock-phantom", "--responder", "--responder-namespaces", shop, "--wait=false",
		"--nats-url", "nats://nats.messaging.svc:4222", "--skip-falco"}
	out, progress, err := kubectl(t, kc, args...)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, progress)
	}
	if !strings.Contains(progress, "responder: applying") || !strings.Contains(out, install.ResponderURL(ns)) {
		t.Errorf("install output:\n%s\n%s", out, progress)
	}

	// The token and the certificate are in their Secrets, and nowhere else.
	tokenSecret, err := kube.CoreV1().Secrets(ns).Get(ctx, install.SecretResponderToken, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := string(tokenSecret.Data["token"])
	tlsSecret, err := kube.CoreV1().Secrets(ns).Get(ctx, install.SecretResponderTLS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bundle := &pki.Bundle{CACert: tlsSecret.Data["ca.crt"], Cert: tlsSecret.Data["tls.crt"], Key: tlsSecret.Data["tls.key"]}
	if len(token) < 32 || pki.CheckServer(bundle, []string{"falco-phantom-responder." + ns + ".svc"}, time.Now()) != nil {
		t.Fatalf("responder Secrets: token of %d bytes, certificate %v", len(token), pki.CheckServer(bundle, []string{"falco-phantom-responder." + ns + ".svc"}, time.Now()))
	}
	assertOnlyIn(t, ns, token, install.SecretResponderToken)
	assertOnlyIn(t, ns, string(bundle.Key), install.SecretResponderTLS)
	if strings.Contains(out+progress, token) {
		t.Error("install printed the responder's token")
	}

	// Its Deployment acts in shop only, with a Role there and no ClusterRole.
	dep, err := kube.AppsV1().Deployments(ns).Get(ctx, install.ReleaseResponder, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if env := envOf(dep); env["RESPONDER_NAMESPACES"] != shop || env["RESPONDER_ACTIONS"] != "isolate,release,label,annotate,describe" ||
		env["PHANTOM_BASE_URL"] != "http://mockphantom."+ns+".svc.cluster.local:8080" {
		t.Errorf("responder env %v", env)
	}
	if _, err := kube.RbacV1().Roles(shop).Get(ctx, install.ReleaseResponder, metav1.GetOptions{}); err != nil {
		t.Errorf("Role in %s: %v", shop, err)
	}
	if _, err := kube.RbacV1().ClusterRoles().Get(ctx, install.ReleaseResponder+"-"+ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a ClusterRole although namespaces were listed: %v", err)
	}
	// The mock's playbook calls the responder's Service with its token and CA.
	pb, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "mockphantom-playbooks", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: " + install.MockIsolatePlaybook, "rule: Terminal shell in container", "action: isolate",
		"url: " + install.ResponderURL(ns), "token_file: /etc/mockphantom/responder/token", "ca_file: /etc/mockphantom/responder/ca.crt"} {
		if !strings.Contains(pb.Data["playbooks.yaml"], want) {
			t.Errorf("playbooks.yaml lacks %q:\n%s", want, pb.Data["playbooks.yaml"])
		}
	}
	mock, _ := kube.AppsV1().Deployments(ns).Get(ctx, install.ReleaseMock, metav1.GetOptions{})
	if mock == nil || !strings.Contains(strings.Join(mock.Spec.Template.Spec.Containers[0].Args, " "), "--playbooks="+install.MockPlaybooksFile) {
		t.Errorf("the mock does not read the playbooks: %v", mock)
	}

	// A re-install keeps the token and the certificate.
	if _, progress, err := kubectl(t, kc, args...); err != nil {
		t.Fatalf("second install: %v\n%s", err, progress)
	}
	again, _ := kube.CoreV1().Secrets(ns).Get(ctx, install.SecretResponderToken, metav1.GetOptions{})
	againTLS, _ := kube.CoreV1().Secrets(ns).Get(ctx, install.SecretResponderTLS, metav1.GetOptions{})
	if string(again.Data["token"]) != token || string(againTLS.Data["tls.key"]) != string(bundle.Key) {
		t.Error("a re-install changed the responder's token or certificate")
	}

	// A pod isolated for case 9 shows in status.
	isolate(t, shop, "web", 9)
	out, _, _ = kubectl(t, kc, "status", "-n", ns, "-o", "json")
	var report struct {
		Responder struct {
			Namespaces []string              `json:"namespaces"`
			Actions    []string              `json:"actions"`
			Isolated   []install.IsolatedPod `json:"isolated"`
		} `json:"responder"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || len(report.Responder.Namespaces) != 1 || len(report.Responder.Actions) != 5 ||
		len(report.Responder.Isolated) != 1 || report.Responder.Isolated[0] != (install.IsolatedPod{Namespace: shop, Pod: "web", Case: "9"}) {
		t.Errorf("status -o json responder = %+v (%v)\n%s", report.Responder, err, out)
	}
	out, _, _ = kubectl(t, kc, "status", "-n", ns)
	if !strings.Contains(out, "Responder: 0/0 pods ready") || !strings.Contains(out, "Isolated pods (1):\n  "+shop+"/web (case 9)") {
		t.Errorf("status:\n%s", out)
	}

	// Uninstall removes the responder and its Secrets, not the isolation.
	out, progress, err = kubectl(t, kc, "uninstall", "-n", ns)
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, progress)
	}
	if !strings.Contains(out, "Still isolated") || !strings.Contains(out, shop+"/web (case 9)") {
		t.Errorf("uninstall does not say which pods are still isolated:\n%s", out)
	}
	assertGone(t, ns)
	if _, err := kube.RbacV1().Roles(shop).Get(ctx, install.ReleaseResponder, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Role in %s survived uninstall: %v", shop, err)
	}
	if pod, _ := kube.CoreV1().Pods(shop).Get(ctx, "web", metav1.GetOptions{}); pod.Labels[respond.IsolationLabel] != "9" {
		t.Errorf("uninstall released the pod: labels %v", pod.Labels)
	}
	if _, err := kube.NetworkingV1().NetworkPolicies(shop).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall removed the isolation policy: %v", err)
	}

	// --release-isolated gives the pod its network back.
	if _, progress, err := kubectl(t, kc, args...); err != nil {
		t.Fatalf("third install: %v\n%s", err, progress)
	}
	out, progress, err = kubectl(t, kc, "uninstall", "-n", ns, "--release-isolated")
	if err != nil {
		t.Fatalf("uninstall --release-isolated: %v\n%s", err, progress)
	}
	if !strings.Contains(out, "Released 1 isolated pod(s):\n  "+shop+"/web (case 9)") || strings.Contains(out, "Still isolated") {
		t.Errorf("uninstall --release-isolated:\n%s\n%s", out, progress)
	}
	if pod, _ := kube.CoreV1().Pods(shop).Get(ctx, "web", metav1.GetOptions{}); pod.Labels[respond.IsolationLabel] != "" {
		t.Errorf("still isolated after --release-isolated: %v", pod.Labels)
	}
	if _, err := kube.NetworkingV1().NetworkPolicies(shop).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the isolation policy survived --release-isolated: %v", err)
	}
	assertGone(t, ns)
}

// isolate isolates a pod as the responder would, for a case.
func isolate(t *testing.T, ns, pod string, caseID int64) {
	t.Helper()
	r := &respond.Responder{Kube: apiServer.Kube, Policy: respond.Policy{Namespaces: []string{ns}}}
	if _, err := r.Do(context.Background(), respond.Request{Action: respond.Isolate, Namespace: ns, Pod: pod, CaseID: caseID}, "test"); err != nil {
		t.Fatal(err)
	}
}
