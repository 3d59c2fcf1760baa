package hostlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/poll"
)

// Down stops a lab and removes everything it created: pods first (so that
// the kubelet and the CNI plugin release their addresses and interfaces),
// then the processes, containerd's shims and containers included, the
// mounts below the lab folder, the pod bridge, the iptables chains, the
// network namespaces, and the kernel settings it changed. It works from
// what the lab recorded in its folder, so it also cleans up after a
// crash; it is a no-op when no lab is there. The logs stay in Dir/logs
// until the next Up.
func Down(ctx context.Context, cfg Config) error {
	s := cfg.resolve()
	saved, ok, err := loadSettings(s.Dir)
	if err != nil {
		logf(cfg.Log, "hostlab: %v; cleaning up with the given settings", err)
	}
	if ok {
		if saved.ToolsDir == "" || !fileExists(saved.tool("kube-proxy")) {
			saved.ToolsDir = s.ToolsDir
		}
		s = saved
	}
	return down(ctx, s, cfg.Log)
}

// Graces of the teardown: bounded, so that Down always ends.
const (
	podDeleteWait = 60 * time.Second
	stopGrace     = 10 * time.Second
)

func down(ctx context.Context, s settings, w io.Writer) error {
	l := s.layout()
	begin := time.Now()
	if !fileExists(l.root) {
		// Nothing on disk. A lab folder removed by hand may have left
		// the bridge and the chains: remove them only when the lab's own
		// bridge or chain says a lab ran here.
		if _, err := net.InterfaceByName(s.Bridge); err == nil || run(ctx, "iptables", "-w", "-L", egressChain, "-n") == nil {
			return teardownNetwork(ctx, l, s)
		}
		return nil
	}
	var errs []error
	fail := func(err error) {
		if err != nil {
			logf(w, "hostlab: teardown: %v", err)
			errs = append(errs, err)
		}
	}
	running := processes(l)
	alive := 0
	for _, up := range running {
		if up {
			alive++
		}
	}
	logf(w, "hostlab: stopping the lab in %s (%d of its processes running)", s.Dir, alive)
	// No new pods: stop the controllers and the scheduler first.
	for _, name := range []string{"provisioner", "kube-controller-manager", "kube-scheduler"} {
		fail(stopRecorded(ctx, l, name, stopGrace))
	}
	// Then let the kubelet end every pod properly: it stops the
	// containers and calls the CNI plugin to remove their interfaces and
	// addresses.
	if running["kube-apiserver"] && running["kubelet"] && running["containerd"] {
		fail(deletePods(ctx, l, w))
	}
	for _, name := range []string{"kube-router", "kube-proxy", "kubelet", "coredns"} {
		fail(stopRecorded(ctx, l, name, stopGrace))
	}
	// Whatever still runs in a container: end it through runc, which
	// works with or without containerd.
	fail(killContainers(ctx, l))
	fail(stopRecorded(ctx, l, "containerd", stopGrace))
	// containerd's shims outlive containerd by design; they name its
	// socket on their command line.
	for _, r := range processesMentioning(l.containerdSock()) {
		fail(stopPID(ctx, r, 2*time.Second))
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		fail(stopRecorded(ctx, l, name, stopGrace))
	}
	// A process recorded under another name, or started by a version of
	// this code that named it differently.
	for _, name := range recordedNames(l) {
		fail(stopRecorded(ctx, l, name, stopGrace))
	}
	for _, r := range processesMentioning(l.root + string(filepath.Separator)) {
		if !labProgram(r.Path) {
			continue // someone reading the lab's logs, say
		}
		logf(w, "hostlab: stopping leftover process %d (%s)", r.PID, r.Path)
		fail(stopPID(ctx, r, 2*time.Second))
	}
	// Mounts: the kubelet's bind mount of its root and the volumes of the
	// pods, containerd's root file systems, shm and network namespaces.
	fail(unmountBelow(l.root))
	fail(teardownNetwork(ctx, l, s))
	fail(removeCgroups())
	if left := mountsBelow(l.root); len(left) > 0 {
		// Never remove files through a mount: it could be a host folder.
		fail(fmt.Errorf("mounts remain below %s, not removing it: %s", l.root, strings.Join(left, ", ")))
	} else {
		fail(removeAllBut(l.root, "logs"))
	}
	logf(w, "hostlab: lab stopped and removed in %s", time.Since(begin).Round(100*time.Millisecond))
	return errors.Join(errs...)
}

// labProgram reports whether a program is one the lab runs, so that the
// last sweep over processes naming the lab folder ends only those.
func labProgram(path string) bool {
	switch filepath.Base(path) {
	case "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
		"coredns", "kube-router", "containerd", "containerd-shim-runc-v2", "runc", "hostlab-helper":
		return true
	}
	return false
}

// deletePods deletes every pod and waits, within podDeleteWait, until the
// kubelet has ended them all.
func deletePods(ctx context.Context, l layout, w io.Writer) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", l.kubeconfig("admin"))
	if err != nil {
		return err
	}
	cfg.Timeout = 10 * time.Second
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	list, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	if len(list.Items) == 0 {
		return nil
	}
	logf(w, "hostlab: deleting %d pod(s)", len(list.Items))
	grace := int64(2)
	for _, p := range list.Items {
		_ = kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	}
	err = poll.Until(ctx, podDeleteWait, 250*time.Millisecond, func(ctx context.Context) error {
		list, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if n := len(list.Items); n > 0 {
			return fmt.Errorf("%d pod(s) still there", n)
		}
		return nil
	})
	if errors.Is(err, poll.ErrTimeout) {
		return fmt.Errorf("%w; ending their containers directly", err)
	}
	return err
}

// killContainers ends every container runc knows in the lab's runc root.
func killContainers(ctx context.Context, l layout) error {
	root := filepath.Join(l.runcRoot(), containerdNamespace)
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		id := e.Name()
		_ = exec.CommandContext(ctx, "runc", "--root", root, "kill", id, "KILL").Run()
		if out, err := exec.CommandContext(ctx, "runc", "--root", root, "delete", "--force", id).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("runc delete %s: %w: %s", id, err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
}

// mountsBelow lists the mount points at or below dir, deepest first.
func mountsBelow(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMount decodes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountBelow unmounts everything at or below dir, deepest first; a
// mount that is busy is detached.
func unmountBelow(dir string) error {
	var errs []error
	for range 3 { // stacked mounts need more than one pass
		mounts := mountsBelow(dir)
		if len(mounts) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mounts {
			if err := syscall.Unmount(mp, 0); err != nil {
				if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
					errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// removeCgroups removes the cgroups containerd made for the lab's
// containers: with the cgroupfs driver and no QoS cgroups they sit below
// "k8s.io" (the containerd namespace) in every hierarchy. runc removes a
// container's own cgroup when it deletes the container; what is left is
// empty, and rmdir refuses anything that is not.
func removeCgroups() error {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*/" + containerdNamespace)
	if fileExists("/sys/fs/cgroup/" + containerdNamespace) {
		hierarchies = append(hierarchies, "/sys/fs/cgroup/"+containerdNamespace)
	}
	var errs []error
	for _, top := range hierarchies {
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		// Deepest first. A cgroup that still holds processes (EBUSY) is
		// not the lab's: its processes are all gone by now.
		for i := len(dirs) - 1; i >= 0; i-- {
			err := syscall.Rmdir(dirs[i])
			if err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EBUSY) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeAllBut removes the contents of dir except the entries named keep.
func removeAllBut(dir string, keep ...string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if contains(keep, e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
