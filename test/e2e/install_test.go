//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/lab/hostlab"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// TestInstallOnARealCluster drives the plugin through the life of an
// installation on the lab, with real pods and the upstream NATS and Falco
// charts: install with --wait, status, an alert posted to the real
// falcosidekick through NATS and the forwarder into the mock SOAR, a
// re-install that upgrades every pod and keeps the mock's cases, status
// with the forwarder scaled to zero, and uninstall. The steps depend on
// each other: the first failure ends the test.
func TestInstallOnARealCluster(t *testing.T) {
	e := needLab(t)
	ctx := t.Context()
	kube := e.cluster.Kube
	// The default namespace, as a user would install.
	ns := install.DefaultNamespace
	// On failure: first the namespace's state, then an uninstall, so that
	// what this test left (cluster-wide RBAC included) cannot fail the next.
	uninstallOnFailure(t, e, ns)
	dumpOnFailure(t, kube, ns)
	installArgs := func(tag string) []string {
		args := append([]string{"install", "--mock-phantom"}, e.chartArgs...)
		return append(args, "--image-tag", tag, "--timeout", "3m")
	}
	var firstCase *phantom.Container
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("install waits for every component to be ready", func(t *testing.T) {
		out, progress, err := e.run(t, ctx, installArgs(imageTag)...)
		if err != nil {
			t.Fatalf("install: %v\nprogress:\n%s", err, progress)
		}
		t.Logf("install progress:\n%s", progress)
		// --wait returned: every workload must be ready right now, with
		// pods running the images built for this test.
		if err := allReady(ctx, kube, ns); err != nil {
			t.Errorf("install returned before the pods were ready: %v", err)
		}
		for _, c := range []struct{ component, workload string }{
			{"nats", "StatefulSet/nats"}, {"mockphantom", "Deployment/mockphantom"},
			{"forwarder", "Deployment/falco-phantom-forwarder"}, {"falco", "DaemonSet/falco"}, {"falco", "Deployment/falco-falcosidekick"},
		} {
			for _, want := range []string{c.component + ": applying", c.component + ": waiting for " + c.workload, c.component + ": ready after"} {
				if !strings.Contains(progress, want) {
					t.Errorf("progress lacks %q:\n%s", want, progress)
				}
			}
		}
		if !strings.Contains(out, "falco-phantom is installed in namespace "+ns) {
			t.Errorf("install summary:\n%s", out)
		}
		wantImages := map[string]string{
			"falco-phantom-forwarder": images.Ref(images.DefaultRegistry, images.ForwarderRepo, imageTag),
			"mockphantom":             images.Ref(images.DefaultRegistry, images.MockPhantomRepo, imageTag),
			"nats":                    e.upstream.NATSImage,
		}
		for release, want := range wantImages {
			if got := podImages(ctx, kube, ns, install.Component(release).Selector()); len(got) != 1 || got[0] != want {
				t.Errorf("pods of %s run %v, want [%s]", release, got, want)
			}
		}
		// The Falco chart's pods: Falco (or its stand-in) alone in its
		// container, no falcoctl, and falcosidekick twice (the chart's
		// two replicas).
		falcoImage := images.FalcoRef
		if !e.realFalco() {
			falcoImage = images.FalcoStandinRef
		}
		for selector, want := range map[string][]string{
			"app.kubernetes.io/instance=falco,app.kubernetes.io/name=falco":         {falcoImage},
			"app.kubernetes.io/instance=falco,app.kubernetes.io/name=falcosidekick": {images.FalcosidekickRef, images.FalcosidekickRef},
		} {
			if got := podImages(ctx, kube, ns, selector); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("pods %s run %v, want %v", selector, got, want)
			}
		}
	})

	step("status reports every component healthy", func(t *testing.T) {
		out, _, err := e.run(t, ctx, "status")
		if err != nil {
			t.Fatalf("status: %v (exit code %d)\n%s", err, cmdmain.ExitCode(err), out)
		}
		for _, want := range []string{
			"nats-2.14.2", "falco-9.1.0", "StatefulSet/nats 1/1 ready", "Deployment/mockphantom 1/1 ready",
			"Deployment/falco-phantom-forwarder 1/1 ready", "DaemonSet/falco 1/1 nodes ready", "Deployment/falco-falcosidekick 2/2 ready",
			"Forwarder: 1/1 pods ready", "reachable: yes", "Healthy.",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, " NO ") {
			t.Errorf("status shows a component not ready:\n%s", out)
		}
	})

	step("an alert posted to falcosidekick is published to NATS and becomes a case in the mock SOAR", func(t *testing.T) {
		firstCase = sendShellAlert(t, ctx, kube, ns, "e2e-"+rand.String(8))
		// Falco runs too, and any alert of its own goes the same way:
		// at least this one was delivered.
		out, _, err := e.run(t, ctx, "status")
		if n := delivered(out); err != nil || n < 1 {
			t.Errorf("status after one alert: %v\n%s\nwant the forwarder to report at least 1 delivered, got %d", err, out, n)
		}
	})

	step("re-install upgrades every pod and keeps the mock's cases", func(t *testing.T) {
		before := livePodUIDs(ctx, kube, ns)
		secret, err := kube.CoreV1().Secrets(ns).Get(ctx, install.SecretMock, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, progress, err := e.run(t, ctx, installArgs(upgradeTag)...)
		if err != nil {
			t.Fatalf("re-install: %v\nprogress:\n%s", err, progress)
		}
		for _, release := range []string{"nats", "mockphantom", "falco-phantom-forwarder", "falco"} {
			if want := "release " + release + " revision 2 deployed"; !strings.Contains(progress, want) {
				t.Errorf("re-install progress lacks %q:\n%s", want, progress)
			}
		}
		if err := allReady(ctx, kube, ns); err != nil {
			t.Errorf("re-install returned before the pods were ready: %v", err)
		}
		for _, app := range []string{"falco-phantom-forwarder", "mockphantom"} {
			want := images.Ref(images.DefaultRegistry, map[string]string{
				"falco-phantom-forwarder": images.ForwarderRepo, "mockphantom": images.MockPhantomRepo}[app], upgradeTag)
			if got := podImages(ctx, kube, ns, install.Component(app).Selector()); len(got) != 1 || got[0] != want {
				t.Errorf("after the upgrade, pods of %s run %v, want [%s]", app, got, want)
			}
		}
		after := livePodUIDs(ctx, kube, ns)
		for uid, name := range before {
			if _, still := after[uid]; still && (strings.HasPrefix(name, "mockphantom-") || strings.HasPrefix(name, "falco-phantom-forwarder-")) {
				t.Errorf("pod %s survived the upgrade of its image", name)
			}
		}
		again, err := kube.CoreV1().Secrets(ns).Get(ctx, install.SecretMock, metav1.GetOptions{})
		if err != nil || string(again.Data["token"]) != string(secret.Data["token"]) {
			t.Fatalf("the re-install changed the mock's credentials (%v)", err)
		}
		// A new mock pod on the same claim: the case is still there.
		soar := mockSOAR(t, ctx, kube, ns)
		var kept *phantom.Container
		waitFor(t, time.Minute, "the upgraded mock SOAR to serve the first case", func() error {
			var err error
			kept, err = soar.Container(ctx, firstCase.ID)
			return err
		})
		if kept.SourceDataIdentifier != firstCase.SourceDataIdentifier || kept.Description != firstCase.Description {
			t.Errorf("case %d after the upgrade: %s %q, want %s %q", kept.ID, kept.SourceDataIdentifier, kept.Description,
				firstCase.SourceDataIdentifier, firstCase.Description)
		}
		// The upgraded pipeline still delivers, and remembers the
		// incident: a second shell in the same container within the
		// group window joins the first case.
		second := sendShellAlert(t, ctx, kube, ns, "e2e-"+rand.String(8))
		if second.ID != firstCase.ID {
			t.Errorf("a second alert about the same container went to case %d, want the first case %d (one case per incident)", second.ID, firstCase.ID)
		}
	})

	step("status reports the forwarder down when it is scaled to zero", func(t *testing.T) {
		scale := &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Name: install.ReleaseForwarder, Namespace: ns},
			Spec:       autoscalingv1.ScaleSpec{Replicas: 0},
		}
		if _, err := kube.AppsV1().Deployments(ns).UpdateScale(ctx, install.ReleaseForwarder, scale, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Minute, "the forwarder's pods to be gone", func() error {
			pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + install.ReleaseForwarder})
			if err != nil {
				return err
			}
			if n := len(pods.Items); n > 0 {
				return fmt.Errorf("%d forwarder pod(s) left, the first %s", n, pods.Items[0].Status.Phase)
			}
			return nil
		})
		out, _, err := e.run(t, ctx, "status")
		if code := cmdmain.ExitCode(err); err == nil || code != 3 {
			t.Errorf("status with no forwarder: exit code %d (%v), want 3\n%s", code, err, out)
		}
		for _, want := range []string{"Forwarder: 0/0 pods ready", "Problems:", "forwarder: no ready pod"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
	})

	step("uninstall leaves nothing behind", func(t *testing.T) {
		_, progress, err := e.run(t, ctx, "uninstall")
		if err != nil {
			t.Fatalf("uninstall: %v\n%s", err, progress)
		}
		waitFor(t, 2*time.Minute, "namespace "+ns+" to be deleted", func() error {
			n, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("namespace %s is %s", ns, n.Status.Phase)
		})
		waitFor(t, time.Minute, "the volumes of the deleted claims to be removed", func() error {
			pvs, err := kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			if len(pvs.Items) > 0 {
				return fmt.Errorf("%d PersistentVolume(s) left, the first %s (%s)", len(pvs.Items), pvs.Items[0].Name, pvs.Items[0].Status.Phase)
			}
			entries, err := os.ReadDir(e.cluster.Dir + "/volumes")
			if err != nil {
				return err
			}
			if len(entries) > 0 {
				return fmt.Errorf("%d volume folder(s) left in %s/volumes", len(entries), e.cluster.Dir)
			}
			return nil
		})
		assertNothingLeft(t, ctx, kube)
	})
}

// sendShellAlert posts a "Terminal shell in container" alert about the
// Falco pod's own container to falcosidekick's Service, as Falco's HTTP
// output does; falcosidekick publishes it to the in-cluster NATS (the test
// listens there too, to see the subject), and the forwarder makes it a
// case in the mock SOAR. It checks the case and its artifact and returns
// the case.
func sendShellAlert(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, marker string) *phantom.Container {
	t.Helper()
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=falco,app.kubernetes.io/name=falco"})
	if err != nil || len(pods.Items) != 1 || len(pods.Items[0].Status.ContainerStatuses) == 0 {
		t.Fatalf("the Falco pod: %d pods (%v)", len(pods.Items), err)
	}
	pod := pods.Items[0]
	cs := pod.Status.ContainerStatuses[0]
	// Falco reports the first 12 characters of the container's ID.
	containerID := cs.ContainerID[strings.Index(cs.ContainerID, "://")+3:][:12]
	cmdline := "sh -c echo " + marker
	ev := falco.ShellEvent(falco.ShellSpec{
		Hostname: pod.Spec.NodeName, ContainerID: containerID, ContainerName: cs.Name,
		Namespace: ns, Pod: pod.Name, CommandLine: cmdline,
	})
	published := listen(t, ctx, kube, ns, marker)
	sidekick := clusterIP(t, ctx, kube, ns, "falco-falcosidekick", 2801)
	// A pod that just became ready is routed by its Service only once
	// kube-proxy has synced (about a second): until then the connection
	// is refused, and nothing was published.
	waitFor(t, 30*time.Second, "falcosidekick at "+sidekick+" to take the alert", func() error {
		return postAlert(ctx, sidekick, ev)
	})
	select {
	case subject := <-published:
		if want := "falco.notice.terminal_shell_in_container"; subject != want {
			t.Errorf("falcosidekick published on %s, want %s", subject, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("falcosidekick took the alert and published nothing with %s to NATS within 30s", marker)
	}
	soar := mockSOAR(t, ctx, kube, ns)
	var art *phantom.Artifact
	waitFor(t, time.Minute, "an artifact about "+marker+" in the mock SOAR", func() error {
		var err error
		art, err = findArtifact(ctx, soar, cmdline)
		return err
	})
	for key, want := range map[string]string{"kubernetesPodName": pod.Name, "kubernetesNamespace": ns, "containerId": containerID, "falcoRule": falco.ShellRule} {
		if got := fmt.Sprint(art.CEF[key]); got != want {
			t.Errorf("artifact cef %s = %q, want %q", key, got, want)
		}
	}
	c, err := soar.Container(ctx, art.Container)
	if err != nil {
		t.Fatalf("case %d of the artifact: %v", art.Container, err)
	}
	if c.Name != falco.ShellRule || c.Label != "events" || c.Severity != "low" {
		t.Errorf("case = name %q label %q severity %q, want %q events low", c.Name, c.Label, c.Severity, falco.ShellRule)
	}
	return c
}

// delivered reads the forwarder's "delivered N" from status's output; -1
// when it is not there.
func delivered(status string) int {
	_, rest, ok := strings.Cut(status, "delivered ")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimRight(strings.Fields(rest)[0], ","))
	if err != nil {
		return -1
	}
	return n
}

// allReady checks that every Deployment, StatefulSet and DaemonSet of ns
// has all its replicas ready.
func allReady(ctx context.Context, kube kubernetes.Interface, ns string) error {
	var notReady []string
	deps, err := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, d := range deps.Items {
		if d.Status.ReadyReplicas < *d.Spec.Replicas || d.Status.UpdatedReplicas < *d.Spec.Replicas {
			notReady = append(notReady, fmt.Sprintf("Deployment/%s %d/%d ready", d.Name, d.Status.ReadyReplicas, *d.Spec.Replicas))
		}
	}
	sts, err := kube.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, s := range sts.Items {
		if s.Status.ReadyReplicas < *s.Spec.Replicas {
			notReady = append(notReady, fmt.Sprintf("StatefulSet/%s %d/%d ready", s.Name, s.Status.ReadyReplicas, *s.Spec.Replicas))
		}
	}
	dss, err := kube.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, d := range dss.Items {
		if d.Status.DesiredNumberScheduled == 0 || d.Status.NumberReady < d.Status.DesiredNumberScheduled {
			notReady = append(notReady, fmt.Sprintf("DaemonSet/%s %d/%d ready", d.Name, d.Status.NumberReady, d.Status.DesiredNumberScheduled))
		}
	}
	if n := len(deps.Items) + len(sts.Items) + len(dss.Items); n == 0 {
		return fmt.Errorf("no workload in namespace %s", ns)
	}
	if len(notReady) > 0 {
		return fmt.Errorf("%s", strings.Join(notReady, ", "))
	}
	return nil
}

// podImages lists the images of the containers of the running (not
// terminating) pods a label selector selects.
func podImages(ctx context.Context, kube kubernetes.Interface, ns, selector string) []string {
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Spec.Containers {
			out = append(out, c.Image)
		}
	}
	return out
}

// livePodUIDs maps the UIDs of the namespace's pods to their names, leaving
// out pods on their way out: marked for deletion or with every container
// ended (a replaced pod can linger a moment in phase Succeeded).
func livePodUIDs(ctx context.Context, kube kubernetes.Interface, ns string) map[string]string {
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	out := map[string]string{}
	if err != nil {
		return out
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out[string(p.UID)] = p.Name
	}
	return out
}

// assertNothingLeft checks the whole cluster for anything install made:
// Helm release records, cluster-wide RBAC of the charts, and claims.
func assertNothingLeft(t *testing.T, ctx context.Context, kube kubernetes.Interface) {
	t.Helper()
	secrets, err := kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{FieldSelector: "type=helm.sh/release.v1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		t.Errorf("Helm release record %s/%s left behind", s.Namespace, s.Name)
	}
	helmManaged := metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=Helm"}
	roles, err := kube.RbacV1().ClusterRoles().List(ctx, helmManaged)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles.Items {
		t.Errorf("ClusterRole %s left behind", r.Name)
	}
	bindings, err := kube.RbacV1().ClusterRoleBindings().List(ctx, helmManaged)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bindings.Items {
		t.Errorf("ClusterRoleBinding %s left behind", b.Name)
	}
	pvcs, err := kube.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pvcs.Items {
		t.Errorf("claim %s/%s left behind", c.Namespace, c.Name)
	}
	if sc, err := kube.StorageV1().StorageClasses().Get(ctx, hostlab.StorageClass, metav1.GetOptions{}); err != nil || sc == nil {
		t.Errorf("the lab's StorageClass is gone (%v): uninstall removed something it did not create", err)
	}
}
