//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
)

// TestNetworkPoliciesAreEnforced checks that the lab enforces
// NetworkPolicies (kube-router's firewall, run by the hostlab), so that
// an isolation the responder makes is tested for its effect, not for the
// object it creates: a pod reaches a server, a policy denying the
// server's ingress cuts that, one denying the client's egress too, and
// deleting them brings the connection back.
func TestNetworkPoliciesAreEnforced(t *testing.T) {
	e := needLab(t)
	ctx := t.Context()
	kube := e.cluster.Kube
	const ns = "e2e-netpol"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	dumpOnFailure(t, kube, ns)

	server := sleeperPod("server", map[string]string{"role": "server"}, httpdScript("served"))
	client := sleeperPod("client", map[string]string{"role": "client"}, "exec sleep 3600")
	serverIP := runPods(t, ctx, kube, ns, 2*time.Minute, server, client)["server"]
	fetch := func() error {
		out, err := e.kubectl(ctx, "-n", ns, "exec", "client", "--", "sh", "-c",
			fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s 8080`, serverIP))
		if err != nil {
			return err
		}
		if !strings.Contains(out, "served") {
			return fmt.Errorf("the server answered %q", out)
		}
		return nil
	}
	cut := func(what string) {
		t.Helper()
		begin := time.Now()
		waitFor(t, 30*time.Second, what+" to cut the connection", func() error {
			if err := fetch(); err == nil {
				return fmt.Errorf("the client still reaches the server")
			}
			return nil
		})
		t.Logf("%s: the connection failed %s after the policy was created", what, time.Since(begin).Round(10*time.Millisecond))
	}
	restored := func(what string) {
		t.Helper()
		waitFor(t, 30*time.Second, "the connection to come back after "+what, fetch)
	}

	restored("start")
	deny := func(name string, sel map[string]string, types ...networkingv1.PolicyType) {
		t.Helper()
		np := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: sel}, PolicyTypes: types},
		}
		if _, err := kube.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(name string) {
		t.Helper()
		if err := kube.NetworkingV1().NetworkPolicies(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deny("server-ingress", server.Labels, networkingv1.PolicyTypeIngress)
	cut("denying the server's ingress")
	remove("server-ingress")
	restored("deleting the ingress policy")
	deny("client-egress", client.Labels, networkingv1.PolicyTypeEgress)
	cut("denying the client's egress")
	remove("client-egress")
	restored("deleting the egress policy")
}

// sleeperPod is a pod of the shell image running script, which ends at
// once on deletion.
func sleeperPod(name string, labels map[string]string, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: name, Image: images.ShellRef, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/bin/sh", "-c", script},
			}},
		},
	}
}

// httpdScript serves body on port 8080 with busybox's httpd.
func httpdScript(body string) string {
	return "mkdir -p /www && echo " + body + " > /www/index.html && exec httpd -f -p 8080 -h /www"
}

// runPods creates pods in ns, waits until each runs with an IP and
// returns their IPs by name.
func runPods(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string, timeout time.Duration, pods ...*corev1.Pod) map[string]string {
	t.Helper()
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		names = append(names, p.Name)
	}
	ips := map[string]string{}
	waitFor(t, timeout, "pods "+strings.Join(names, ", ")+" to run", func() error {
		for _, name := range names {
			p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				return fmt.Errorf("pod %s is %s", name, p.Status.Phase)
			}
			ips[name] = p.Status.PodIP
		}
		return nil
	})
	return ips
}

// kubectl runs the lab's kubectl (build/tools) with args and returns its
// output; the error holds it too.
func (e *env) kubectl(ctx context.Context, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, filepath.Join(e.toolsDir, "kubectl"), append([]string{"--kubeconfig", e.cluster.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
