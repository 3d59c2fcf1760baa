//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
)

// TestClusterRunsPodsServicesAndDNS checks the lab itself, so that a
// failure of the install tests can be told apart from a broken node: a
// Deployment with a readiness probe from an imported image, a Service
// reached by name from another pod (CoreDNS and kube-proxy) and by its
// ClusterIP from this machine.
func TestClusterRunsPodsServicesAndDNS(t *testing.T) {
	e := needLab(t)
	ctx := t.Context()
	kube := e.cluster.Kube
	const ns = "e2e-basics"

	node, err := kube.CoreV1().Nodes().Get(ctx, e.cluster.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := node.Status.NodeInfo.KubeletVersion; v != "v1.37.2" {
		t.Errorf("kubelet version %s, want v1.37.2 (build/tools pins it)", v)
	}

	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	dumpOnFailure(t, kube, ns)

	marker := "hostlab-" + rand.String(8)
	// busybox as PID 1 ignores SIGTERM: do not wait 30 s for it.
	oneSecond := int64(1)
	labels := map[string]string{"app": "web"}
	web := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &oneSecond, Containers: []corev1.Container{{
					Name: "httpd", Image: images.ShellRef, ImagePullPolicy: corev1.PullNever,
					Command: []string{"/bin/sh", "-c", httpdScript(marker)},
					Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	if _, err := kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "Deployment web to be available", func() error {
		d, err := kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas < 1 {
			return fmt.Errorf("%d/1 available", d.Status.AvailableReplicas)
		}
		return nil
	})

	// From this machine, through kube-proxy's rules for the ClusterIP.
	addr := clusterIP(t, ctx, kube, ns, "web", 80)
	waitFor(t, 30*time.Second, "GET http://"+addr+"/ from the node to serve the marker", func() error {
		return getContains(ctx, "http://"+addr+"/", marker)
	})

	// From a pod, by the Service's DNS name. Debian's static busybox
	// cannot use glibc's resolver (and its wget crashes): nslookup asks
	// CoreDNS itself, nc speaks HTTP.
	name := fmt.Sprintf("web.%s.svc.cluster.local", ns)
	script := `for i in 1 2 3 4 5; do
  ip=$(nslookup ` + name + ` | awk '/^Address/ && !/#53/ && !/:53$/ {a=$NF} END {print a}')
  [ -n "$ip" ] && printf 'GET / HTTP/1.0\r\nHost: web\r\n\r\n' | nc -w 5 "$ip" 80 && exit 0
  sleep 1
done
exit 1`
	url := "http://" + name + "/"
	client := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client"},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &oneSecond,
			Containers: []corev1.Container{{
				Name: "client", Image: images.ShellRef, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/bin/sh", "-c", script},
			}},
		},
	}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, client, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "pod client to fetch "+url, func() error {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "client", metav1.GetOptions{})
		if err != nil {
			return err
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			return nil
		case corev1.PodFailed:
			t.Fatalf("pod client failed to fetch %s", url)
		}
		return fmt.Errorf("pod client is %s", p.Status.Phase)
	})
	logs, err := kube.CoreV1().Pods(ns).GetLogs("client", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "200 OK") || !strings.Contains(string(logs), marker) {
		t.Errorf("pod client fetched %q from %s, want a 200 answer with %q", logs, url, marker)
	}
}

func getContains(ctx context.Context, url, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), want) {
		return fmt.Errorf("%s: %s %q, want it to contain %q", url, resp.Status, b, want)
	}
	return nil
}
