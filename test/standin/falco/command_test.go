package falcostandin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	falcostandin "github.com/falco-phantom/kubectl-falco-phantom/test/standin/falco"
)

const webID = "0c30aac0e6f0d3b1c5e9f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f"

// tasks writes containerd's folder of running tasks: one folder per
// container id, with the OCI config the CRI plugin writes.
func tasks(t *testing.T, containers map[string]map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for id, annotations := range containers {
		if err := os.MkdirAll(filepath.Join(dir, id), 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]any{"ociVersion": "1.1.0", "annotations": annotations})
		if err := os.WriteFile(filepath.Join(dir, id, "config.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func cri(kind, ns, pod, name, image string) map[string]string {
	return map[string]string{
		"io.kubernetes.cri.container-type": kind, "io.kubernetes.cri.sandbox-namespace": ns,
		"io.kubernetes.cri.sandbox-name": pod, "io.kubernetes.cri.container-name": name, "io.kubernetes.cri.image-name": image,
	}
}

func TestContainersAreFoundInContainerdsTasks(t *testing.T) {
	t.Parallel()
	c := falcostandin.Containers{Dir: tasks(t, map[string]map[string]string{
		webID:                   cri("container", "shop", "web-1", "web", "docker.io/library/nginx:1.27"),
		strings.Repeat("a", 64): cri("sandbox", "shop", "web-1", "", ""),
		strings.Repeat("b", 64): cri("container", "shop", "web-1", "sidecar", "busybox:1"),
		strings.Repeat("c", 64): cri("container", "other", "web-1", "web", "nginx"),
	})}
	got, err := c.Find("shop", "web-1", "web")
	if err != nil || got.ID != webID || got.Name != "web" || got.Image != "docker.io/library/nginx:1.27" {
		t.Fatalf("Find(shop, web-1, web) = %+v, %v", got, err)
	}
	if _, err := c.Find("shop", "web-1", ""); err == nil || !strings.Contains(err.Error(), "2 running containers") {
		t.Errorf("Find without a name in a pod of two containers = %v, want an error naming both", err)
	}
	if got, err := c.Find("other", "web-1", ""); err != nil || got.ID != strings.Repeat("c", 64) {
		t.Errorf("Find without a name in a pod of one container = %+v, %v", got, err)
	}
	if _, err := c.Find("shop", "gone", "web"); err == nil {
		t.Error("found a container of a pod that has none")
	}
}

func TestConfigIsFalcos(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	// As the Falco chart renders it with falcosidekick on.
	cfg, err := falcostandin.ReadConfig(write("falco.yaml", `
json_output: true
http_output:
  enabled: true
  url: http://falco-falcosidekick:2801
webserver:
  enabled: true
  listen_address: 0.0.0.0
  listen_port: 8765
  k8s_healthz_endpoint: /healthz
`))
	if err != nil || cfg.HTTPOutput.URL != "http://falco-falcosidekick:2801" || cfg.Webserver.ListenPort != 8765 {
		t.Fatalf("ReadConfig = %+v, %v", cfg, err)
	}
	for name, body := range map[string]string{
		"no http output": "json_output: true\nwebserver: {enabled: true, listen_port: 8765}\n",
		"no json":        "http_output: {enabled: true, url: http://x}\nwebserver: {enabled: true, listen_port: 8765}\n",
		"no webserver":   "json_output: true\nhttp_output: {enabled: true, url: http://x}\n",
	} {
		if _, err := falcostandin.ReadConfig(write(strings.ReplaceAll(name, " ", "-")+".yaml", body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The stand-in follows the log from its end: an exec of a shell with a
// terminal written after it started is posted to falcosidekick's place,
// once, with the container found in containerd's tasks.
func TestWatcherPostsTheShellsOfTheLog(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(log, []byte(execWithTTY+"\n"), 0o644); err != nil { // before the start: not posted
		t.Fatal(err)
	}
	posted := make(chan *falco.Event, 10)
	sidekick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ev, err := falco.Parse(b)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		posted <- ev
	}))
	defer sidekick.Close()
	w := &falcostandin.Watcher{
		LogPath: log, SidekickURL: sidekick.URL + "/", Hostname: "node-1",
		Containers: falcostandin.Containers{Dir: tasks(t, map[string]map[string]string{webID: cri("container", "shop", "web-1", "web", "nginx:1.27")})},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	// The watcher may open the log after this append: poll until it is
	// seen (a line appended before the open is skipped, as it should be).
	deadline := time.After(10 * time.Second)
	var ev *falco.Event
	for ev == nil {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		line := strings.Replace(execWithTTY, `"auditID":"a1"`, `"auditID":"a-`+time.Now().Format(time.RFC3339Nano)+`"`, 1)
		_, _ = f.WriteString(execNoTTY + "\n" + line + "\n")
		f.Close()
		select {
		case ev = <-posted:
		case <-time.After(300 * time.Millisecond):
		case <-deadline:
			t.Fatal("no alert posted within 10s")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if ev.Rule != falco.ShellRule || ev.OutputFields.String("container.id") != webID[:12] || ev.OutputFields.String("k8s.pod.name") != "web-1" {
		t.Errorf("posted %+v", ev)
	}
}
