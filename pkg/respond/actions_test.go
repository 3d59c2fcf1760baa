package respond_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

func TestLabelAndAnnotateSetAndRemove(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	newPod(t, apiServer.Kube, ns, "web", "")
	r, _ := responder(ns)
	res, err := r.Do(ctx, respond.Request{Action: respond.Label, Namespace: ns, Pod: "web", Labels: map[string]string{"falco-phantom.io/case": "42", "app-": ""}}, "test")
	if err != nil || !res.Changed {
		t.Fatalf("label: %+v, %v", res, err)
	}
	l := getPod(t, ns, "web").Labels
	if l["falco-phantom.io/case"] != "42" || l["app"] != "" {
		t.Errorf("labels %v: want falco-phantom.io/case=42 and no app", l)
	}
	if res, err := r.Do(ctx, respond.Request{Action: respond.Label, Namespace: ns, Pod: "web", Labels: map[string]string{"falco-phantom.io/case": "42", "app-": ""}}, "test"); err != nil || res.Changed {
		t.Errorf("the same labels again: %+v, %v; want unchanged", res, err)
	}
	note := "INC-7 | shell\nopened"
	if _, err := r.Do(ctx, respond.Request{Action: respond.Annotate, Namespace: ns, Pod: "web", Annotations: map[string]string{"soc.example.com/ticket": note}}, "test"); err != nil {
		t.Fatal(err)
	}
	if got := getPod(t, ns, "web").Annotations["soc.example.com/ticket"]; got != note {
		t.Errorf("annotation %q, want %q", got, note)
	}
}

func TestTerminateDeletesOnceAndSparesStandalonePods(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	// On a node: the API server waits for the (absent) kubelet, so the
	// pod stays, being deleted, as it does for its grace period.
	newPod(t, apiServer.Kube, ns, "web-1", "", func(p *corev1.Pod) {
		p.OwnerReferences = controllerRef("ReplicaSet", "web")
		p.Spec.NodeName = "node-1"
	})
	newPod(t, apiServer.Kube, ns, "debug", "", func(p *corev1.Pod) { p.Spec.NodeName = "node-1" })
	r, _ := responder(ns)
	res, err := r.Do(ctx, respond.Request{Action: respond.Terminate, Namespace: ns, Pod: "web-1", GracePeriodSeconds: new(int64(5))}, "test")
	if err != nil || !res.Changed || !strings.Contains(res.Message, "ReplicaSet web will start a new one") || !strings.Contains(res.Message, "5 s") {
		t.Fatalf("terminate: %+v, %v", res, err)
	}
	if p := getPod(t, ns, "web-1"); p.DeletionTimestamp == nil || *p.DeletionGracePeriodSeconds != 5 {
		t.Errorf("pod after terminate: deletion %v, grace %v; want being deleted with 5 s", p.DeletionTimestamp, p.DeletionGracePeriodSeconds)
	}
	if res, err := r.Do(ctx, respond.Request{Action: respond.Terminate, Namespace: ns, Pod: "web-1"}, "test"); err != nil || res.Changed {
		t.Errorf("terminate again: %+v, %v; want unchanged (already being deleted)", res, err)
	}
	if _, err := r.Do(ctx, respond.Request{Action: respond.Terminate, Namespace: ns, Pod: "debug"}, "test"); respond.CodeOf(err) != respond.StandalonePod {
		t.Fatalf("standalone pod: %v, want standalone_pod", err)
	}
	if getPod(t, ns, "debug").DeletionTimestamp != nil {
		t.Fatal("the standalone pod was deleted after the refusal")
	}
	res, err = r.Do(ctx, respond.Request{Action: respond.Terminate, Namespace: ns, Pod: "debug", AllowStandalone: true, GracePeriodSeconds: new(int64(0))}, "test")
	if err != nil || !strings.Contains(res.Message, "will not come back") {
		t.Fatalf("standalone pod, allowed: %+v, %v", res, err)
	}
	if _, err := apiServer.Kube.CoreV1().Pods(ns).Get(ctx, "debug", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod deleted with grace 0: %v, want gone", err)
	}
	if _, err := r.Do(ctx, respond.Request{Action: respond.Terminate, Namespace: ns, Pod: "debug", AllowStandalone: true}, "test"); respond.CodeOf(err) != respond.PodNotFound {
		t.Errorf("terminate of a pod gone: %v, want pod_not_found", err)
	}
}

func TestCordonAndUncordonTheNode(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns + "-node"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "keep", Effect: corev1.TaintEffectNoExecute}}}}
	if _, err := apiServer.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = apiServer.Kube.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{})
	})
	newPod(t, apiServer.Kube, ns, "web", "", func(p *corev1.Pod) { p.Spec.NodeName = node.Name })
	r, _ := responder(ns)
	getNode := func() *corev1.Node {
		n, err := apiServer.Kube.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	const taint = "falco-phantom.io/compromised=true:NoSchedule"
	res, err := r.Do(ctx, respond.Request{Action: respond.Cordon, Namespace: ns, Pod: "web", Taint: taint}, "test")
	if err != nil || !res.Changed || res.Target.Node != node.Name {
		t.Fatalf("cordon: %+v, %v", res, err)
	}
	n := getNode()
	has := func(n *corev1.Node, key string) bool {
		return slices.ContainsFunc(n.Spec.Taints, func(x corev1.Taint) bool { return x.Key == key })
	}
	if !n.Spec.Unschedulable || !has(n, "falco-phantom.io/compromised") || !has(n, "keep") {
		t.Errorf("node after cordon: unschedulable %v, taints %v; want cordoned, both taints", n.Spec.Unschedulable, n.Spec.Taints)
	}
	if res, err := r.Do(ctx, respond.Request{Action: respond.Cordon, Namespace: ns, Pod: "web", Taint: taint}, "test"); err != nil || res.Changed {
		t.Errorf("cordon again: %+v, %v; want unchanged", res, err)
	}
	if _, err := r.Do(ctx, respond.Request{Action: respond.Uncordon, Namespace: ns, Pod: "web", Taint: taint}, "test"); err != nil {
		t.Fatal(err)
	}
	n = getNode()
	if n.Spec.Unschedulable || has(n, "falco-phantom.io/compromised") || !has(n, "keep") {
		t.Errorf("node after uncordon: unschedulable %v, taints %v; want schedulable, the other taint kept", n.Spec.Unschedulable, n.Spec.Taints)
	}
}

func TestDescribeFollowsTheOwnerChainAndNamesRisks(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	apps := apiServer.Kube.AppsV1()
	dep, err := apps.Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: podSpec()},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := apps.ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-7d4b9c", Namespace: ns, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: new(true),
		}}},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: podSpec()},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newPod(t, apiServer.Kube, ns, "web-7d4b9c-x2x7k", fullID("c0ffee000000"), func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: new(true)}}
		p.Labels = map[string]string{"app": "web"}
		p.Spec.HostPID = true
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: new(true), RunAsUser: new(int64(0))}
		p.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	})
	r, _ := responder(ns)
	before := getPod(t, ns, "web-7d4b9c-x2x7k").ResourceVersion
	res, err := r.Do(ctx, respond.Request{Action: respond.Describe, ContainerID: "c0ffee000000", CaseID: 9}, "test")
	if err != nil {
		t.Fatal(err)
	}
	d := res.Details
	if res.Changed || d == nil || getPod(t, ns, "web-7d4b9c-x2x7k").ResourceVersion != before {
		t.Fatalf("describe: changed %v, details %v; want a description and nothing changed", res.Changed, d)
	}
	if len(d.Owners) != 2 || d.Owners[0].Kind != "ReplicaSet" || d.Owners[1].Kind != "Deployment" || d.Owners[1].Name != "web" {
		t.Errorf("owners %+v, want ReplicaSet web-7d4b9c then Deployment web", d.Owners)
	}
	if len(d.Containers) != 1 || !strings.Contains(d.Containers[0].ImageID, "@sha256:") || !d.Containers[0].Privileged {
		t.Errorf("containers %+v: want the image with its digest, privileged", d.Containers)
	}
	for _, want := range []string{"container app is privileged", "container app runs as root", "shares the host PID namespace", "mounts host path /"} {
		if !slices.Contains(d.Risks, want) {
			t.Errorf("risks %q lack %q", d.Risks, want)
		}
	}
}
