package respond_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// The tests run against a real API server (envtest): objects are stored,
// validated and authorised for real; no kubelet runs, so pods never start
// and their status is written by the tests.
var (
	apiServer *testkit.APIServer
	noAPIWhy  string
)

func TestMain(m *testing.M) { testkit.RunWithAPIServer(m, &apiServer, &noAPIWhy) }

// recorder keeps the audit records.
type recorder struct {
	mu   sync.Mutex
	recs []respond.Record
}

func (r *recorder) Record(_ context.Context, rec respond.Record) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}

func (r *recorder) last(t *testing.T) respond.Record {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.recs) == 0 {
		t.Fatal("no audit record")
	}
	return r.recs[len(r.recs)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recs)
}

var nsSeq atomic.Int64

// newNamespace creates a namespace of its own for a test.
func newNamespace(t *testing.T) string {
	t.Helper()
	testkit.Need(t, apiServer, noAPIWhy)
	ns := fmt.Sprintf("respond-%d", nsSeq.Add(1))
	_, err := apiServer.Kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = apiServer.Kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return ns
}

// podSpec is what every test pod runs; it never starts.
func podSpec() corev1.PodSpec {
	return corev1.PodSpec{
		AutomountServiceAccountToken: new(false),
		Containers:                   []corev1.Container{{Name: "app", Image: "registry.example/app:1.0"}},
	}
}

// newPod creates a pod; with an id, its status says it runs a container
// of that id, as a kubelet would write.
func newPod(t *testing.T, kube kubernetes.Interface, ns, name, containerID string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}}, Spec: podSpec()}
	for _, m := range mutate {
		m(p)
	}
	got, err := kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if containerID != "" {
		got.Status.Phase = corev1.PodRunning
		got.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "app", Image: "registry.example/app:1.0", ImageID: "registry.example/app@sha256:" + fmt.Sprintf("%064d", 7),
			ContainerID: "containerd://" + containerID, Ready: true,
		}}
		if got, err = kube.CoreV1().Pods(ns).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func getPod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := apiServer.Kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// responder acts in ns with every action allowed, auditing into a recorder.
func responder(ns ...string) (*respond.Responder, *recorder) {
	rec := &recorder{}
	return &respond.Responder{Kube: apiServer.Kube, Policy: respond.Policy{Namespaces: ns, Protected: respond.ProtectedNamespaces("falco-phantom")}, Audit: rec}, rec
}

// fullID is a 64-digit container id starting with prefix.
func fullID(prefix string) string {
	return prefix + fmt.Sprintf("%0*d", 64-len(prefix), 1)
}

type corev1Pod = corev1.Pod

func labelsOf(m map[string]string) labels.Set { return labels.Set(m) }

func controllerRef(kind, name string) []metav1.OwnerReference {
	api := "apps/v1"
	if kind == "Job" || kind == "CronJob" {
		api = "batch/v1"
	}
	return []metav1.OwnerReference{{APIVersion: api, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: new(true)}}
}
