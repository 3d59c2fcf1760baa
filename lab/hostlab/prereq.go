package hostlab

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// PrerequisiteError lists what a machine lacks to run a lab, one line
// each, every line saying how to fix it.
type PrerequisiteError struct{ Problems []string }

func (e *PrerequisiteError) Error() string {
	return "this machine cannot run the hostlab:\n  " + strings.Join(e.Problems, "\n  ")
}

// Tools are the binaries a lab needs in Config.ToolsDir.
var Tools = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "coredns", "kube-router"}

// hostCommands are the programs a lab runs, with the Debian package that
// has each.
var hostCommands = []struct{ name, pkg string }{
	{"containerd", "containerd"},
	{"containerd-shim-runc-v2", "containerd"},
	{"ctr", "containerd"},
	{"runc", "runc"},
	{"iptables", "iptables"},
	{"iptables-save", "iptables"},
	{"iptables-restore", "iptables"},
	{"ipset", "ipset"},
	{"conntrack", "conntrack"},
	{"ip", "iproute2"},
}

// Check returns what this machine lacks to run a lab with cfg (nil when
// nothing), one line per problem naming the fix.
func Check(cfg Config) []string { return check(cfg.resolve()) }

func check(s settings) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if runtime.GOOS != "linux" {
		return []string{"the hostlab runs on Linux only (this is " + runtime.GOOS + ")"}
	}
	if os.Geteuid() != 0 {
		add("not root: the hostlab runs containerd, a kubelet and iptables; run it as root")
	}
	for _, c := range hostCommands {
		if _, err := exec.LookPath(c.name); err != nil {
			add("%s not found: apt-get install %s", c.name, c.pkg)
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if !fileExists(filepath.Join(s.CNIBinDir, plugin)) {
			add("CNI plugin %s not found in %s: apt-get install containernetworking-plugins", plugin, s.CNIBinDir)
		}
	}
	if err := checkStatic(s.Busybox); err != nil {
		add("%v", err)
	}
	var missing []string
	for _, t := range Tools {
		if s.ToolsDir == "" || !fileExists(s.tool(t)) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		where := s.ToolsDir
		if where == "" {
			where = "(no tools folder given)"
		}
		add("Kubernetes binaries missing in %s: %s: build them with: bash build/tools/build.sh", where, strings.Join(missing, ", "))
	}
	if s.NodeIP == "" {
		add("no node address: no interface with a global IPv4 address is up; give one with --node-ip")
	}
	if !fileExists("/proc/sys/net/bridge/bridge-nf-call-iptables") {
		add("the kernel lacks bridge netfilter (/proc/sys/net/bridge): modprobe br_netfilter")
	}
	if b, err := os.ReadFile("/proc/filesystems"); err == nil && !strings.Contains(string(b), "overlay") {
		add("the kernel lacks the overlay file system: modprobe overlay")
	}
	return out
}

// checkStatic checks that path is a static binary (busybox runs in images
// that hold nothing else).
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("static busybox not found at %s: apt-get install busybox-static", path)
	}
	defer f.Close()
	if slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		return fmt.Errorf("%s is not a static binary: apt-get install busybox-static", path)
	}
	return nil
}
