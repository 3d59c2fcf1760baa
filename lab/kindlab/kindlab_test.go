package kindlab_test

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/falco-phantom/kubectl-falco-phantom/lab/kindlab"
)

func TestClusterConfigFollowsFalcoOnKind(t *testing.T) {
	t.Parallel()
	cfg := kindlab.ClusterConfig()
	if cfg.APIVersion != "kind.x-k8s.io/v1alpha4" || len(cfg.Nodes) != 1 || cfg.Nodes[0].Role != v1alpha4.ControlPlaneRole {
		t.Fatalf("config = %+v", cfg)
	}
	mounts := cfg.Nodes[0].ExtraMounts
	if len(mounts) != 1 || mounts[0].HostPath != "/dev" || mounts[0].ContainerPath != "/dev" {
		t.Errorf("mounts = %+v, want the host's /dev at /dev", mounts)
	}
}

func TestLoadPlan(t *testing.T) {
	t.Parallel()
	plan := kindlab.LoadPlan([]string{"lab-control-plane", "lab-worker"}, []string{"b:1", "a:1"})
	if len(plan) != 2 || plan[0].Node != "lab-control-plane" || plan[1].Node != "lab-worker" {
		t.Fatalf("plan = %+v", plan)
	}
	for _, step := range plan {
		if strings.Join(step.Refs, ",") != "a:1,b:1" {
			t.Errorf("node %s gets %v, want every image, sorted", step.Node, step.Refs)
		}
	}
}

// The real checks on this machine: Docker's client may be there, but no
// engine runs, and without Docker on the PATH the message says so.
func TestCheckSaysWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	meminfo := strings.NewReader("MemTotal: 2048000 kB\nMemAvailable: 1024000 kB\n")
	problems := kindlab.Check(ctx, "darwin", meminfo, nil)
	joined := ""
	for _, p := range problems {
		joined += p.Error() + "\n"
	}
	for _, want := range []string{"needs a Linux host (this is darwin)", "GiB of memory available"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q:\n%s", want, joined)
		}
	}
	t.Setenv("PATH", t.TempDir())
	problems = kindlab.Check(ctx, "linux", nil, nil)
	if len(problems) != 1 || !strings.Contains(problems[0].What, "Docker is not installed") || !strings.Contains(problems[0].Fix, "make demo") {
		t.Errorf("without docker: %v", problems)
	}
}
