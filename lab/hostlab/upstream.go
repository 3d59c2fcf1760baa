package hostlab

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	falcostandin "github.com/falco-phantom/kubectl-falco-phantom/test/standin/falco"
)

// Upstream says how the lab runs the pipeline's third-party parts for
// real: the upstream NATS and Falco charts, falcosidekick and Falco, from
// images.Lab's images of the upstream folder.
type Upstream struct {
	// Folder is the upstream folder (../shared/upstream).
	Folder images.Upstream
	// NATSImage is the NATS server image the lab built
	// (images.NATSServerRef).
	NATSImage string
	// FalcoStandin runs the Falco stand-in (test/standin/falco) in the
	// Falco chart's DaemonSet instead of Falco: where the folder holds no
	// Falco. It needs the lab's audit log (Config.AuditPolicy set to
	// falcostandin.AuditPolicy).
	FalcoStandin bool
}

// Paths the Falco container sees the lab's files at.
const (
	standinLogDir = "/host/var/lib/hostlab/logs"
	standinTasks  = "/host/var/lib/hostlab/containerd-tasks"
	// hostContainerdSocket is where Falco 0.40's built-in CRI engine
	// looks for containerd: its default socket below HOST_ROOT (/host).
	hostContainerdSocket = "/host/run/containerd/containerd.sock"
)

// InstallArgs are the flags of "kubectl falco-phantom install" that put
// the upstream charts on this lab; add --mock-phantom (or a SOAR),
// --image-tag and the rest. Every value below is one the lab needs and a
// user's cluster does not, so it is given here and is no default of
// install (see docs/development.md):
//
// NATS (chart 2.14.2): the server image is the one built from the
// nats-server module (the chart's nats:2.14.2-alpine is in no registry
// here); the config reloader is off (its image is in no registry here
// either, and it only reloads a changed ConfigMap, which no test does).
// nats-box is off by install's own default. JetStream is on, as install
// sets it.
//
// Falco (chart 9.1.0): the driver is install's modern_ebpf (no driver
// loader; the probe is in Falco); falcoctl's rule and plugin downloads are
// off (no registry: the rules come with the image); the container plugin
// of Falco 0.41+ is off (the chart loads it through falcoctl; Falco 0.40
// has its container engines built in, and finds containerd through the
// socket mounted at its default place below /host); the container gets
// BPF, PERFMON and SYS_PTRACE instead of privileged: true (this machine's
// root lacks CAP_SYS_RESOURCE, so a privileged container, or one asking
// for it as the chart's least-privileged mode does, cannot start), with
// the memlock shim preloaded (the raise of RLIMIT_MEMLOCK that needs that
// capability is answered as done; kernels since 5.11 do not need it).
// falcosidekick runs the image built from the upstream binary, tagged
// with its version.
//
// With FalcoStandin, the Falco container runs the stand-in instead, given
// the lab's audit log and containerd's tasks.
func (c *Cluster) InstallArgs(u Upstream) ([]string, error) {
	if missing := u.Folder.Missing(); len(missing) > 0 {
		return nil, errors.New(strings.Join(missing, "; "))
	}
	if u.NATSImage == "" {
		return nil, errors.New("hostlab: no NATS image given")
	}
	args := []string{
		"--nats-chart", u.Folder.NATSChart(),
		"--nats-set", "container.image.fullImageName=" + u.NATSImage,
		"--nats-set", "reloader.enabled=false",
		"--falco-chart", u.Folder.FalcoChart(),
		"--falco-driver", "modern_ebpf",
		"--falco-set", "falcoctl.artifact.install.enabled=false",
		"--falco-set", "falcoctl.artifact.follow.enabled=false",
		"--falco-set", "collectors.containerEngine.enabled=false",
		"--falco-set", "containerSecurityContext.capabilities.add={BPF,PERFMON,SYS_PTRACE}",
	}
	args = append(args, image("falcosidekick.image", images.FalcosidekickRef)...)
	mounts := &mountList{}
	if !u.FalcoStandin {
		if !u.Folder.HasFalco() {
			return nil, fmt.Errorf("%s is missing: run the Falco stand-in (Upstream.FalcoStandin)", u.Folder.FalcoRootFS())
		}
		args = append(args, image("image", images.FalcoRef)...)
		args = append(args, env(0, "LD_PRELOAD", images.FalcoMemlockShim)...)
		args = append(args, mounts.add("containerd-socket", c.ContainerdSocket, hostContainerdSocket, false)...)
		return args, nil
	}
	if c.AuditLog == "" {
		return nil, errors.New("hostlab: the Falco stand-in follows the audit log, and the lab runs without one (Config.AuditPolicy)")
	}
	args = append(args, image("image", images.FalcoStandinRef)...)
	args = append(args, env(0, falcostandin.EnvAuditLog, filepath.Join(standinLogDir, filepath.Base(c.AuditLog)))...)
	args = append(args, env(1, falcostandin.EnvContainers, standinTasks)...)
	args = append(args, mounts.add("hostlab-logs", filepath.Dir(c.AuditLog), standinLogDir, true)...)
	args = append(args, mounts.add("containerd-tasks", c.ContainerdTasks, standinTasks, true)...)
	return args, nil
}

// image sets a chart's registry, repository and tag values under key.
func image(key, ref string) []string {
	registry, rest, _ := strings.Cut(ref, "/")
	repo, tag, _ := strings.Cut(rest, ":")
	return []string{
		"--falco-set", key + ".registry=" + registry,
		"--falco-set", key + ".repository=" + repo,
		"--falco-set", key + ".tag=" + tag,
	}
}

// env sets the Falco container's variable number i.
func env(i int, name, value string) []string {
	return []string{
		"--falco-set", fmt.Sprintf("extra.env[%d].name=%s", i, name),
		"--falco-set", fmt.Sprintf("extra.env[%d].value=%s", i, value),
	}
}

// mountList numbers the host folders mounted into the Falco container.
type mountList struct{ n int }

func (m *mountList) add(name, hostPath, mountPath string, readOnly bool) []string {
	i := m.n
	m.n++
	args := []string{
		"--falco-set", fmt.Sprintf("mounts.volumes[%d].name=%s", i, name),
		"--falco-set", fmt.Sprintf("mounts.volumes[%d].hostPath.path=%s", i, hostPath),
		"--falco-set", fmt.Sprintf("mounts.volumeMounts[%d].name=%s", i, name),
		"--falco-set", fmt.Sprintf("mounts.volumeMounts[%d].mountPath=%s", i, mountPath),
	}
	if readOnly {
		args = append(args, "--falco-set", fmt.Sprintf("mounts.volumeMounts[%d].readOnly=true", i))
	}
	return args
}
