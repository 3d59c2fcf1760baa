package hostlab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
)

// fakeUpstream is an upstream folder with the files the lab looks for.
func fakeUpstream(t *testing.T, falco bool) images.Upstream {
	t.Helper()
	u := images.Upstream{Dir: t.TempDir()}
	files := []string{u.NATSChart(), u.FalcoChart(), u.FalcosidekickArchive()}
	if falco {
		files = append(files, u.FalcoRootFS())
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// The lab's values are given to install as flags, each a value the lab
// needs: the images built here, no download, no privileged container.
func TestInstallArgsRunTheUpstreamPartsOnTheLab(t *testing.T) {
	t.Parallel()
	c := &Cluster{ContainerdSocket: "/lab/containerd/containerd.sock", ContainerdTasks: "/lab/containerd/state/tasks/k8s.io"}
	u := Upstream{Folder: fakeUpstream(t, true), NATSImage: "ghcr.io/falco-phantom/nats-server:2.15.2"}
	args, err := c.InstallArgs(u)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	for _, want := range []string{
		"--nats-chart " + u.Folder.NATSChart(), "--falco-chart " + u.Folder.FalcoChart(),
		"--nats-set container.image.fullImageName=ghcr.io/falco-phantom/nats-server:2.15.2", "--nats-set reloader.enabled=false",
		"--falco-driver modern_ebpf", "--falco-set falcoctl.artifact.install.enabled=false", "--falco-set falcoctl.artifact.follow.enabled=false",
		"--falco-set collectors.containerEngine.enabled=false",
		"--falco-set containerSecurityContext.capabilities.add={BPF,PERFMON,SYS_PTRACE}",
		"--falco-set falcosidekick.image.repository=falco-phantom/falcosidekick --falco-set falcosidekick.image.tag=2.34.1",
		"--falco-set image.repository=falco-phantom/falco --falco-set image.tag=0.40.0",
		"--falco-set extra.env[0].name=LD_PRELOAD --falco-set extra.env[0].value=/usr/lib/falco-lab/memlock-shim.so",
		"--falco-set mounts.volumes[0].hostPath.path=/lab/containerd/containerd.sock",
		"--falco-set mounts.volumeMounts[0].mountPath=/host/run/containerd/containerd.sock",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("install args lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "SYS_RESOURCE") || strings.Contains(got, "privileged") {
		t.Errorf("install args ask for what this machine refuses:\n%s", got)
	}

	// The stand-in needs the audit log; it runs in Falco's place.
	u.FalcoStandin = true
	if _, err := c.InstallArgs(u); err == nil || !strings.Contains(err.Error(), "audit log") {
		t.Errorf("the stand-in without an audit log: %v", err)
	}
	c.AuditLog = "/lab/logs/audit.log"
	args, err = c.InstallArgs(u)
	if err != nil {
		t.Fatal(err)
	}
	got = strings.Join(args, " ")
	for _, want := range []string{
		"--falco-set image.repository=falco-phantom/falco-standin --falco-set image.tag=lab",
		"extra.env[0].name=FALCO_STANDIN_AUDIT_LOG --falco-set extra.env[0].value=/host/var/lib/hostlab/logs/audit.log",
		"mounts.volumes[0].hostPath.path=/lab/logs", "mounts.volumes[1].hostPath.path=/lab/containerd/state/tasks/k8s.io",
		"mounts.volumeMounts[1].readOnly=true",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("stand-in install args lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "LD_PRELOAD") {
		t.Errorf("the stand-in is given Falco's memlock shim:\n%s", got)
	}

	// Without Falco in the folder, only the stand-in can run.
	noFalco := Upstream{Folder: fakeUpstream(t, false), NATSImage: u.NATSImage}
	if _, err := c.InstallArgs(noFalco); err == nil || !strings.Contains(err.Error(), "stand-in") {
		t.Errorf("Falco without its root file system: %v", err)
	}
}
