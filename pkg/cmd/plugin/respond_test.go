package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	cmdrespond "github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/respond"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// respondPod creates a pod whose status says it runs container id, as a
// kubelet would write (the test API server runs no kubelet).
func respondPod(t *testing.T, ns, name, id string) {
	t.Helper()
	ctx := context.Background()
	kube := apiServer.Kube
	if _, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{AutomountServiceAccountToken: new(false), Containers: []corev1.Container{{Name: "app", Image: "busybox:1.37"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "busybox:1.37", ContainerID: "containerd://" + id}}
	if _, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRespondActsWithTheUsersRights(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	ctx := context.Background()
	const ns, id = "fp-respond", "ab12cd34ef56000000000000000000000000000000000000000000000000beef"
	respondPod(t, ns, "web", id)
	// The same container id in the pipeline's namespace: never searched
	// unless named.
	respondPod(t, "fp-respond-pipeline", "nats-0", "99"+id[2:])
	kc := apiServer.Kubeconfig

	out, _, err := kubectl(t, kc, "respond", "isolate", "-n", ns, "--pod", "web", "--reason", "shell", "-o", "json")
	if err != nil {
		t.Fatalf("respond isolate: %v", err)
	}
	var res respond.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if !res.Changed || res.Target.Pod != "web" || res.RequestID == "" {
		t.Errorf("isolate: %+v", res)
	}
	p, _ := apiServer.Kube.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
	if p.Labels[respond.IsolationLabel] != "manual" {
		t.Errorf("labels after respond isolate: %v", p.Labels)
	}
	out, _, err = kubectl(t, kc, "respond", "isolate", "--container-id", id[:12], "--install-namespace", "fp-respond-pipeline")
	if err != nil || !strings.Contains(out, "isolate "+ns+"/web: nothing to do") || !strings.Contains(out, "already isolated") {
		t.Errorf("isolate again by container id: %v\n%s", err, out)
	}
	out, _, err = kubectl(t, kc, "respond", "describe", "-n", ns, "--pod", "web")
	if err != nil || !strings.Contains(out, "Owners: none (a standalone pod)") || !strings.Contains(out, "Isolated: for case manual") {
		t.Errorf("describe: %v\n%s", err, out)
	}

	// Refusals: exit code 2, the reason in one line, nothing changed.
	viewer, err := apiServer.KubeconfigFor("respond-viewer")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, kubeconfig string
		args             []string
		says             string
	}{
		{"standalone pod", kc, []string{"respond", "terminate", "-n", ns, "--pod", "web"}, "standalone_pod: pod " + ns + "/web has no controller"},
		{"unknown pod", kc, []string{"respond", "isolate", "-n", ns, "--pod", "nope"}, "pod_not_found"},
		{"pipeline not searched", kc, []string{"respond", "isolate", "--container-id", "99" + id[2:12], "--install-namespace", "fp-respond-pipeline"}, "no pod in every namespace but fp-respond-pipeline and kube-system runs container"},
		{"no rights", viewer, []string{"respond", "release", "-n", ns, "--pod", "web"}, "the API server refused it"},
		{"bad label flag", kc, []string{"respond", "label", "-n", ns, "--pod", "web", "--label", "oops"}, "write key=value to set, key- to remove"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := kubectl(t, c.kubeconfig, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line saying %q", err, c.says)
			}
			if c.name != "bad label flag" && cmdmain.ExitCode(err) != cmdrespond.ExitRefused {
				t.Errorf("exit code %d, want %d", cmdmain.ExitCode(err), cmdrespond.ExitRefused)
			}
		})
	}
	if p2, _ := apiServer.Kube.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{}); p2.ResourceVersion != p.ResourceVersion {
		t.Error("a refused request changed the pod")
	}
	// With --case, the outcome is noted in the SOAR the install uses.
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testkit.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	const pipeline = "fp-respond-pipeline"
	if _, progress, err := kubectl(t, kc, "install", "-n", pipeline, "--wait=false", "--phantom-url", soar.URL, "--phantom-token-file", tokenFile,
		"--nats-url", "nats://nats.messaging.svc:4222", "--skip-falco"); err != nil {
		t.Fatalf("install: %v\n%s", err, progress)
	}
	t.Cleanup(func() { kubectl(t, kc, "uninstall", "-n", pipeline) }) //nolint:errcheck
	client, err := phantom.New(phantom.Config{BaseURL: soar.URL, Credentials: phantom.StaticCredentials{Token: testkit.Token}})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := client.CreateContainer(ctx, &phantom.Container{Name: "Terminal shell in container", Label: "events", SourceDataIdentifier: "respond-cli"})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = kubectl(t, kc, "respond", "release", "-n", ns, "--pod", "web", "--case", fmt.Sprint(ct.ID), "--install-namespace", pipeline)
	if err != nil || !strings.Contains(out, fmt.Sprintf("noted in case %d", ct.ID)) {
		t.Fatalf("release --case: %v\n%s", err, out)
	}
	notes, err := client.Notes(ctx, phantom.Query{Filters: map[string]any{"container": ct.ID}})
	if err != nil || len(notes.Data) != 1 || !strings.Contains(notes.Data[0].Content, "via kubectl falco-phantom respond (kube user ") {
		t.Fatalf("notes in the case: %+v, %v", notes, err)
	}
	if _, err := apiServer.Kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, respond.IsolationPolicy, metav1.GetOptions{}); err == nil {
		t.Error(fmt.Sprintf("policy %s left after the last release", respond.IsolationPolicy))
	}
}
