package demo_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/demo"
)

func TestDemoEndToEnd(t *testing.T) {
	t.Parallel()
	var progress bytes.Buffer
	dir := t.TempDir()
	res, err := demo.Run(context.Background(), demo.Options{DataDir: dir, Progress: &progress, Timeout: 20 * time.Second}, nil)
	if err != nil {
		t.Fatalf("demo: %v\nprogress:\n%s", err, progress.String())
	}
	if res.CaseID == 0 || res.ArtifactID == 0 || res.Latency <= 0 || res.Subject != "falco.notice.terminal_shell_in_container" {
		t.Errorf("result = %+v", res)
	}
	for _, step := range []string{"NATS ready at nats://127.0.0.1:", "mock SOAR ready at http://127.0.0.1:", "publishing", "waiting for the case"} {
		if !strings.Contains(progress.String(), step) {
			t.Errorf("progress lacks %q:\n%s", step, progress.String())
		}
	}
	pw, err := os.ReadFile(filepath.Join(dir, "soar-password"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, "soar-password"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v, want 0600", st.Mode().Perm())
	}
	logs, _ := os.ReadFile(filepath.Join(dir, "demo.log"))
	if bytes.Contains(progress.Bytes(), pw) || bytes.Contains(logs, pw) {
		t.Error("the SOAR password was printed or logged")
	}

	// A second run on the same data: the new alert comes from the same
	// container within the grouping window, so it joins the stored case.
	again, err := demo.Run(context.Background(), demo.Options{DataDir: dir, Timeout: 20 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.CaseID != res.CaseID || again.ArtifactID == res.ArtifactID {
		t.Errorf("second run: case %d artifact %d; want case %d again with a new artifact", again.CaseID, again.ArtifactID, res.CaseID)
	}
}

func TestDemoFailsClearlyWhenTheEventCannotArrive(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// Occupy nothing, but give the demo an address it cannot listen on.
	_, err := demo.Run(ctx, demo.Options{SOARListen: "256.0.0.1:1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "mock SOAR") {
		t.Fatalf("error = %v, want one naming the mock SOAR", err)
	}
}
