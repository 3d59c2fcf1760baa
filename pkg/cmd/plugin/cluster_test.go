package plugin_test

// Tests of install, status and uninstall against a real kube-apiserver and
// etcd (envtest). The upstream NATS and Falco charts cannot be downloaded
// here, so the stand-in charts in test/standin/charts take their place; they
// take the same values and create objects with the same names.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/cli"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/plugin"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/kubeless"
)

var (
	apiServer *testkit.APIServer
	noAPIWhy  string
)

func TestMain(m *testing.M) { testkit.RunWithAPIServer(m, &apiServer, &noAPIWhy) }

var (
	natsStandin  = filepath.Join("..", "..", "..", "test", "standin", "charts", "nats")
	falcoStandin = filepath.Join("..", "..", "..", "test", "standin", "charts", "falco")
)

// kubectl runs the plugin's command tree against the test API server.
func kubectl(t *testing.T, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--kubeconfig", kubeconfig)
	err := plugin.Run(context.Background(), args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, os.Getenv)
	return out.String(), errOut.String(), err
}

func TestInstallUpgradeStatusUninstall(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	ctx := context.Background()
	kube, kc := apiServer.Kube, apiServer.Kubeconfig
	const ns = "fp-lifecycle"
	args := []string{"install", "-n", ns, "--mock-phantom", "--wait=false", "--nats-chart", natsStandin, "--falco-chart", falcoStandin,
		"--falco-driver", "modern_ebpf", "--falco-set", "falcosidekick.config.nats.minimumpriority=notice"}

	out, progress, err := kubectl(t, kc, args...)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, progress)
	}
	if !strings.Contains(out, "falco-phantom is installed in namespace "+ns) {
		t.Errorf("install summary:\n%s", out)
	}
	for _, step := range []string{"namespace " + ns + " created", "nats: applying", "mockphantom: applying", "forwarder: applying", "falco: applying"} {
		if !strings.Contains(progress, step) {
			t.Errorf("progress lacks %q:\n%s", step, progress)
		}
	}

	// The mock's credentials, and the forwarder's copy of its token, are in
	// Secrets; nothing else holds them.
	mock, err := kube.CoreV1().Secrets(ns).Get(ctx, install.SecretMock, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := string(mock.Data["token"])
	if len(token) < 20 || len(mock.Data["password"]) < 20 || string(mock.Data["user"]) != "admin" {
		t.Fatalf("mock credentials = %v", keys(mock.Data))
	}
	soar, err := kube.CoreV1().Secrets(ns).Get(ctx, install.SecretSOAR, metav1.GetOptions{})
	if err != nil || string(soar.Data["token"]) != token || len(soar.Data) != 1 {
		t.Fatalf("forwarder's Secret: keys %v, err %v; want only the mock's token", keys(soar.Data), err)
	}
	assertOnlyIn(t, ns, token, install.SecretMock, install.SecretSOAR)
	assertOnlyIn(t, ns, string(mock.Data["password"]), install.SecretMock)
	if strings.Contains(out+progress, token) {
		t.Error("install printed the token")
	}

	// Falco's falcosidekick publishes to the NATS service; the forwarder reads it and writes to the mock.
	sidekick, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "falco-falcosidekick", metav1.GetOptions{})
	natsURL := "nats://nats." + ns + ".svc.cluster.local:4222"
	if err != nil || sidekick.Data["NATS_HOSTPORT"] != natsURL || sidekick.Data["NATS_MINIMUMPRIORITY"] != "notice" {
		t.Errorf("falcosidekick config = %v, %v; want hostport %s", sidekick.Data, err, natsURL)
	}
	falcoCM, _ := kube.CoreV1().ConfigMaps(ns).Get(ctx, "falco", metav1.GetOptions{})
	if falcoCM == nil || falcoCM.Data["driver.kind"] != "modern_ebpf" || falcoCM.Data["tty"] != "true" {
		t.Errorf("Falco values: %v", falcoCM)
	}
	natsConf, _ := kube.CoreV1().ConfigMaps(ns).Get(ctx, "nats-config", metav1.GetOptions{})
	if natsConf == nil || !strings.Contains(natsConf.Data["nats.conf"], "jetstream") {
		t.Errorf("NATS is not configured with JetStream: %v", natsConf)
	}
	fwd, err := kube.AppsV1().Deployments(ns).Get(ctx, install.ReleaseForwarder, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := envOf(fwd)
	wantEnv := map[string]string{
		"PHANTOM_BASE_URL": "http://mockphantom." + ns + ".svc.cluster.local:8080", "NATS_URL": natsURL,
		"NATS_SUBJECT": "falco.>", "VERIFY_SSL": "true", "PHANTOM_TOKEN_FILE": "/etc/falco-phantom/soar/token", "PHANTOM_LABEL": "events",
	}
	for k, want := range wantEnv {
		if env[k] != want {
			t.Errorf("forwarder env %s = %q, want %q", k, env[k], want)
		}
	}
	if _, err := kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, install.ReleaseForwarder+"-nats", metav1.GetOptions{}); err != nil {
		t.Errorf("NetworkPolicy guarding NATS: %v", err)
	}
	if _, err := kube.RbacV1().ClusterRoles().Get(ctx, "falco-standin", metav1.GetOptions{}); err != nil {
		t.Errorf("Falco's RBAC: %v", err)
	}
	if _, err := kube.AppsV1().Deployments(ns).Get(ctx, install.ReleaseMock, metav1.GetOptions{}); err != nil {
		t.Errorf("mock SOAR: %v", err)
	}

	// A second install is an upgrade and keeps the mock's credentials.
	if _, progress, err := kubectl(t, kc, args...); err != nil {
		t.Fatalf("second install: %v\n%s", err, progress)
	} else if !strings.Contains(progress, "revision 2") {
		t.Errorf("second install did not upgrade:\n%s", progress)
	}
	again, _ := kube.CoreV1().Secrets(ns).Get(ctx, install.SecretMock, metav1.GetOptions{})
	if string(again.Data["token"]) != token {
		t.Error("the upgrade changed the mock's credentials")
	}

	// No pod runs on this API server: status must say so and exit 3.
	out, _, err = kubectl(t, kc, "status", "-n", ns)
	if cmdmain.ExitCode(err) != 3 {
		t.Errorf("status exit code %d (%v), want 3 with nothing ready", cmdmain.ExitCode(err), err)
	}
	for _, want := range []string{"nats", "StatefulSet/nats 0/1 ready", "forwarder", "NO", "no ready pod"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = kubectl(t, kc, "status", "-n", ns, "-o", "json")
	var report struct {
		Healthy    bool `json:"healthy"`
		Components []struct {
			Name  string `json:"name"`
			Ready bool   `json:"ready"`
		} `json:"components"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || report.Healthy || len(report.Components) != 4 {
		t.Errorf("status -o json = %s (%v)", out, err)
	}

	// Uninstall leaves nothing of ours behind, and touches nothing else.
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "not-ours", Namespace: "default"}}
	if _, err := kube.CoreV1().ConfigMaps("default").Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, progress, err := kubectl(t, kc, "uninstall", "-n", ns); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, progress)
	}
	assertGone(t, ns)
	if _, err := kube.RbacV1().ClusterRoles().Get(ctx, "falco-standin", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Falco's ClusterRole survived uninstall: %v", err)
	}
	if _, err := kube.CoreV1().ConfigMaps("default").Get(ctx, "not-ours", metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall removed something it did not create: %v", err)
	}
	if _, _, err := kubectl(t, kc, "uninstall", "-n", ns); err == nil || !errors.Is(err, install.ErrNotInstalled) {
		t.Errorf("second uninstall: %v, want ErrNotInstalled", err)
	}
}

func TestInstallWithExistingNATSFalcoAndSOAR(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	ctx := context.Background()
	kube, kc := apiServer.Kube, apiServer.Kubeconfig
	const ns = "fp-existing"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("real-soar-token-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	credsFile := filepath.Join(t.TempDir(), "nats.creds")
	if err := os.WriteFile(credsFile, []byte("-----BEGIN NATS USER JWT-----\nnats-jwt-never-elsewhere\n------END NATS USER JWT------\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, progress, err := kubectl(t, kc, "install", "-n", ns, "--wait=false", "--phantom-url", "https://soar.example.com/",
		"--phantom-token-file", tokenFile, "--insecure-skip-tls-verify", "--nats-url", "nats://nats.messaging.svc:4222",
		"--nats-creds-file", credsFile, "--skip-falco", "--subject", "falco.*.*", "--forwarder-replicas", "2")
	if err != nil {
		t.Fatalf("install: %v\n%s", err, progress)
	}
	if !strings.Contains(progress, "warning: --insecure-skip-tls-verify") {
		t.Errorf("no warning that SOAR's certificate goes unverified:\n%s", progress)
	}
	fwd, err := kube.AppsV1().Deployments(ns).Get(ctx, install.ReleaseForwarder, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := envOf(fwd)
	if env["NATS_URL"] != "nats://nats.messaging.svc:4222" || env["NATS_SUBJECT"] != "falco.*.*" || env["VERIFY_SSL"] != "false" ||
		env["PHANTOM_BASE_URL"] != "https://soar.example.com" || *fwd.Spec.Replicas != 2 {
		t.Errorf("forwarder: replicas %d env %v", *fwd.Spec.Replicas, env)
	}
	if _, err := kube.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, install.ReleaseForwarder, metav1.GetOptions{}); err != nil {
		t.Errorf("two replicas need a PodDisruptionBudget: %v", err)
	}
	if _, err := kube.AppsV1().StatefulSets(ns).Get(ctx, "nats", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("NATS installed although --nats-url was given: %v", err)
	}
	if _, err := kube.AppsV1().DaemonSets(ns).Get(ctx, "falco", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Falco installed although --skip-falco was given: %v", err)
	}
	assertOnlyIn(t, ns, "real-soar-token-123", install.SecretSOAR)
	// The NATS credentials file: in its Secret, mounted, and nowhere else.
	if env["NATS_CREDS_FILE"] == "" {
		t.Errorf("forwarder without NATS_CREDS_FILE: env %v", env)
	}
	if creds, err := kube.CoreV1().Secrets(ns).Get(ctx, install.SecretNATSCreds, metav1.GetOptions{}); err != nil ||
		!strings.Contains(string(creds.Data["nats.creds"]), "nats-jwt-never-elsewhere") {
		t.Errorf("Secret %s: %v", install.SecretNATSCreds, err)
	}
	assertOnlyIn(t, ns, "nats-jwt-never-elsewhere", install.SecretNATSCreds)

	// An existing Secret that holds a token only: the forwarder reads the
	// token, not a user and password that are not there.
	own := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "my-soar", Namespace: ns}, Data: map[string][]byte{"token": []byte("tok")}}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, own, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, progress, err = kubectl(t, kc, "install", "-n", ns, "--wait=false", "--phantom-url", "https://soar.example.com/",
		"--phantom-secret", "my-soar", "--nats-url", "nats://nats.messaging.svc:4222", "--skip-falco")
	if err != nil {
		t.Fatalf("install --phantom-secret: %v\n%s", err, progress)
	}
	fwd, err = kube.AppsV1().Deployments(ns).Get(ctx, install.ReleaseForwarder, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if env := envOf(fwd); env["PHANTOM_TOKEN_FILE"] == "" || env["PHANTOM_USER_FILE"] != "" {
		t.Errorf("forwarder with a token-only Secret: env %v, want PHANTOM_TOKEN_FILE and no user file", env)
	}
	if _, _, err := kubectl(t, kc, "uninstall", "-n", ns); err != nil {
		t.Fatal(err)
	}
	// The namespace existed before: it stays.
	if n, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
		t.Errorf("uninstall deleted a namespace it did not create: %v", err)
	}
	assertGone(t, ns)
}

func TestDryRunMatchesWhatInstallApplies(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	ctx := context.Background()
	kube, kc := apiServer.Kube, apiServer.Kubeconfig
	const ns = "fp-dryrun"
	args := []string{"install", "-n", ns, "--mock-phantom", "--responder", "--nats-chart", natsStandin, "--falco-chart", falcoStandin, "--skip-falco"}
	rendered, _, err := kubectl(t, kc, append(args, "--dry-run")...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("--dry-run changed the cluster: namespace %s exists", ns)
	}
	docs := parseYAML(t, rendered)
	if _, progress, err := kubectl(t, kc, append(args, "--wait=false")...); err != nil {
		t.Fatalf("install: %v\n%s", err, progress)
	}
	defer kubectl(t, kc, "uninstall", "-n", ns) //nolint:errcheck
	checked := 0
	for _, doc := range docs {
		kind, name := doc["kind"].(string), doc["metadata"].(map[string]any)["name"].(string)
		if kind == "Secret" || kind == "ConfigMap" && name == install.StateConfigMap {
			continue // values differ on purpose: redacted, time-stamped
		}
		live := getLive(t, kind, ns, name)
		if diff := subset(doc["spec"], live["spec"], "spec"); diff != "" {
			t.Errorf("%s/%s: the cluster differs from --dry-run: %s", kind, name, diff)
		}
		for _, field := range []string{"data", "rules", "roleRef", "subjects"} {
			if diff := subset(doc[field], live[field], field); diff != "" {
				t.Errorf("%s/%s: %s", kind, name, diff)
			}
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("compared only %d objects", checked)
	}
}

func TestClusterProblemsAreOneLineErrors(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	dir := t.TempDir()
	unreachable := filepath.Join(dir, "unreachable")
	if err := os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// What a machine without any kubeconfig loads, too: no context.
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	restricted, err := apiServer.KubeconfigFor("viewer")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, kubeconfig string
		args             []string
		want             string
	}{
		{"kubeconfig absent", filepath.Join(dir, "absent"), []string{"status"}, "kubeconfig"},
		{"kubeconfig without a cluster", empty, []string{"install", "--mock-phantom"}, "no cluster configured: no kubeconfig found"},
		{"unreachable", unreachable, []string{"install", "--mock-phantom", "--skip-falco"}, "cannot reach the cluster"},
		{"status unreachable", unreachable, []string{"status"}, "cannot reach the cluster: "},
		{"no permissions", restricted, []string{"install", "--mock-phantom", "-n", "fp-denied"}, "missing permissions: create namespaces (cluster-wide)"},
		{"responder namespace missing", apiServer.Kubeconfig, []string{"install", "--mock-phantom", "-n", "fp-noresp", "--responder", "--responder-namespaces", "fp-nowhere"},
			"--responder-namespaces: namespace fp-nowhere does not exist"},
		{"conflicting flags", apiServer.Kubeconfig, []string{"install", "--mock-phantom", "--phantom-url", "https://x"}, "--mock-phantom installs its own SOAR"},
		{"no SOAR", apiServer.Kubeconfig, []string{"install"}, "--phantom-url"},
		{"chart repository down", apiServer.Kubeconfig, []string{"install", "--mock-phantom", "--skip-falco", "-n", "fp-repo", "--wait=false", "--nats-chart-repo", "http://127.0.0.1:1/charts"}, "--nats-chart ./nats-2.14.2.tgz"},
		{"not installed", apiServer.Kubeconfig, []string{"status", "-n", "fp-nothing"}, "nothing installed by kubectl falco-phantom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := kubectl(t, tt.kubeconfig, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.want)
			}
			if tt.name != "chart repository down" && strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error is not one line: %q", err)
			}
			if strings.Contains(tt.want, "cannot reach") && cmdmain.ExitCode(err) != cli.ExitUnreachable {
				t.Errorf("exit code %d, want %d when the cluster cannot be reached", cmdmain.ExitCode(err), cli.ExitUnreachable)
			}
		})
	}
	kubectl(t, apiServer.Kubeconfig, "uninstall", "-n", "fp-repo") //nolint:errcheck
}

func envOf(d *appsv1.Deployment) map[string]string {
	out := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		out[e.Name] = e.Value
	}
	return out
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// assertOnlyIn checks that secret appears in no object of the namespace
// but the Secrets named, Helm's release records included.
func assertOnlyIn(t *testing.T, ns, secret string, allowed ...string) {
	t.Helper()
	ctx := context.Background()
	kube := apiServer.Kube
	secrets, _ := kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	for _, s := range secrets.Items {
		if contains(allowed, s.Name) {
			continue
		}
		for k, v := range s.Data {
			if strings.Contains(string(v), secret) || strings.Contains(helmRelease(v), secret) {
				t.Errorf("Secret %s key %s holds the credential", s.Name, k)
			}
		}
	}
	cms, _ := kube.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	for _, c := range cms.Items {
		for k, v := range c.Data {
			if strings.Contains(v, secret) {
				t.Errorf("ConfigMap %s key %s holds the credential", c.Name, k)
			}
		}
	}
	deps, _ := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	for _, d := range deps.Items {
		b, _ := json.Marshal(d.Spec)
		if strings.Contains(string(b), secret) {
			t.Errorf("Deployment %s holds the credential", d.Name)
		}
	}
}

// helmRelease decodes a Helm release record (base64 of gzip of JSON).
func helmRelease(v []byte) string {
	raw, err := base64.StdEncoding.DecodeString(string(v))
	if err != nil {
		return ""
	}
	return gunzip(raw)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// assertGone checks that nothing install creates is left in ns.
func assertGone(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	kube := apiServer.Kube
	secrets, _ := kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	for _, s := range secrets.Items {
		if s.Type == "helm.sh/release.v1" || strings.HasPrefix(s.Name, "falco-phantom") || strings.HasPrefix(s.Name, "mockphantom") {
			t.Errorf("Secret %s left behind", s.Name)
		}
	}
	for _, check := range []func() (int, error){
		func() (int, error) {
			l, err := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		func() (int, error) {
			l, err := kube.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		func() (int, error) {
			l, err := kube.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		func() (int, error) {
			// Without a controller manager, deleted claims stay terminating.
			l, err := kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
			n := 0
			for _, p := range l.Items {
				if p.DeletionTimestamp == nil {
					n++
				}
			}
			return n, err
		},
		func() (int, error) {
			l, err := kube.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
	} {
		if n, err := check(); err != nil || n != 0 {
			t.Errorf("left behind: %d objects (%v)", n, err)
		}
	}
	if _, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, install.StateConfigMap, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("install record left behind: %v", err)
	}
}

func TestTestShellFailuresHaveTheirExitCodes(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testkit.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	// SOAR does not answer: exit 4, and nothing was created in the cluster.
	out, _, err := kubectl(t, apiServer.Kubeconfig, "test-shell", "-n", "default", "--phantom-url", "http://127.0.0.1:1", "--phantom-token-file", tokenFile)
	if cmdmain.ExitCode(err) != 4 || !strings.Contains(out, "FAILED (soar-unreachable)") || !strings.Contains(out, "Where to look") {
		t.Errorf("SOAR unreachable: exit %d (%v)\n%s", cmdmain.ExitCode(err), err, out)
	}
	pods, _ := apiServer.Kube.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=falco-phantom-test-shell"})
	if len(pods.Items) != 0 {
		t.Errorf("a test pod was created although SOAR was down")
	}
	// The shell cannot be opened: exit 3.
	out, _, err = kubectl(t, apiServer.Kubeconfig, "test-shell", "-n", "default", "--pod", "no-such-pod", "--phantom-url", soar.URL, "--phantom-token-file", tokenFile, "-o", "json")
	var res struct {
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	}
	if cmdmain.ExitCode(err) != 3 || json.Unmarshal([]byte(out), &res) != nil || res.Outcome != "exec-failed" || !strings.Contains(res.Error, "no-such-pod") {
		t.Errorf("no pod: exit %d (%v), result %s", cmdmain.ExitCode(err), err, out)
	}
	// A SOAR with a private CA: unreachable (exit 4) until --phantom-ca-file
	// trusts it; then the run gets as far as the shell (exit 3: no pod).
	tlsURL, caFile := testkit.StartPhantomTLS(t)
	tlsArgs := []string{"test-shell", "-n", "default", "--pod", "no-such-pod", "--phantom-url", tlsURL, "--phantom-token-file", tokenFile}
	if out, _, err := kubectl(t, apiServer.Kubeconfig, tlsArgs...); cmdmain.ExitCode(err) != 4 {
		t.Errorf("untrusted SOAR certificate: exit %d (%v), want 4\n%s", cmdmain.ExitCode(err), err, out)
	}
	if out, _, err := kubectl(t, apiServer.Kubeconfig, append(tlsArgs, "--phantom-ca-file", caFile)...); cmdmain.ExitCode(err) != 3 {
		t.Errorf("SOAR trusted with --phantom-ca-file: exit %d (%v), want 3 (no pod)\n%s", cmdmain.ExitCode(err), err, out)
	}
	// Without an install and without --phantom-url there is nothing to read.
	_, _, err = kubectl(t, apiServer.Kubeconfig, "test-shell", "--install-namespace", "fp-none")
	if err == nil || !strings.Contains(err.Error(), "no install found in namespace fp-none") {
		t.Errorf("no install: %v", err)
	}
}

func TestKubelessRuntime(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	ctx := context.Background()
	kube, kc := apiServer.Kube, apiServer.Kubeconfig
	dyn, err := dynamic.NewForConfig(apiServer.Config)
	if err != nil {
		t.Fatal(err)
	}

	// Kubeless's controllers cannot run on this (1.37) API server: refused
	// before anything is created.
	_, _, err = kubectl(t, kc, "install", "-n", "fp-kubeless-refused", "--runtime", "kubeless", "--install-kubeless", "--mock-phantom", "--skip-falco", "--wait=false")
	if err == nil || !strings.Contains(err.Error(), "cannot run on Kubernetes 1.37") || !strings.Contains(err.Error(), "default runtime") {
		t.Fatalf("--install-kubeless on 1.37: %v, want a refusal pointing to the default runtime", err)
	}
	if _, err := kube.CoreV1().Namespaces().Get(ctx, "fp-kubeless-refused", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused install created its namespace: %v", err)
	}

	// The original command line: the Function and one trigger per topic.
	const ns = "fp-kubeless"
	_, progress, err := kubectl(t, kc, "playbook", "deploy", "-n", ns, "-p", "phantom", "-e", "PHANTOM_USER=user", "-e", "PHANTOM_PASSWORD=xxxXxxxX",
		"-e", "PHANTOM_BASE_URL=https://phantom.example.com", "-t", "falco.*.*", "-t", "falco.error.>", "--nats-url", "nats://nats.nats-io:4222")
	if err != nil {
		t.Fatalf("playbook deploy: %v\n%s", err, progress)
	}
	for _, name := range []string{"functions.kubeless.io", "natstriggers.kubeless.io"} {
		if _, err := dynamic.NewForConfigOrDie(apiServer.Config).Resource(crdGVR).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("CRD %s: %v", name, err)
		}
	}
	fn, err := dyn.Resource(kubeless.Functions).Namespace(ns).Get(ctx, kubeless.FunctionName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Function: %v", err)
	}
	container, _, _ := unstructured.NestedSlice(fn.Object, "spec", "deployment", "spec", "template", "spec", "containers")
	c0 := container[0].(map[string]any)
	env := map[string]string{}
	for _, e := range c0["env"].([]any) {
		m := e.(map[string]any)
		env[m["name"].(string)] = fmt.Sprint(m["value"])
	}
	if !strings.Contains(fmt.Sprint(c0["image"]), "falco-phantom-forwarder") || fmt.Sprint(c0["args"]) != "[--mode=function --listen=:8080]" ||
		env["PHANTOM_BASE_URL"] != "https://phantom.example.com" || env["PHANTOM_PASSWORD_FILE"] != "/etc/falco-phantom/soar/password" {
		t.Errorf("Function container: image %v args %v env %v", c0["image"], c0["args"], env)
	}
	b, _ := json.Marshal(fn.Object)
	if strings.Contains(string(b), "xxxXxxxX") {
		t.Error("the Function holds the password")
	}
	assertOnlyIn(t, ns, "xxxXxxxX", install.SecretSOAR)
	for i, topic := range []string{"falco.*.*", "falco.error.>"} {
		tr, err := dyn.Resource(kubeless.NATSTriggers).Namespace(ns).Get(ctx, kubeless.TriggerName(i), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("trigger %d: %v", i, err)
		}
		got, _, _ := unstructured.NestedString(tr.Object, "spec", "topic")
		sel, _, _ := unstructured.NestedStringMap(tr.Object, "spec", "functionSelector", "matchLabels")
		if got != topic || sel["function"] != kubeless.FunctionName {
			t.Errorf("trigger %d: topic %q selector %v", i, got, sel)
		}
	}
	// No forwarder Deployment: the Function replaces it.
	if _, err := kube.AppsV1().Deployments(ns).Get(ctx, install.ReleaseForwarder, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a forwarder Deployment exists beside the Function: %v", err)
	}

	if _, progress, err := kubectl(t, kc, "uninstall", "-n", ns); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, progress)
	}
	if _, err := dyn.Resource(kubeless.Functions).Namespace(ns).Get(ctx, kubeless.FunctionName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Function left behind: %v", err)
	}
	// CRD deletion finishes once the API server has removed the instances.
	if crd, err := dyn.Resource(crdGVR).Get(ctx, "functions.kubeless.io", metav1.GetOptions{}); err == nil && crd.GetDeletionTimestamp() == nil {
		t.Error("the CRD install created is left behind")
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
