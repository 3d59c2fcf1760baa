package hostlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// egressChain drops what pods send to anything but the pod bridge and the
// node itself: nothing a pod does leaves the machine.
const egressChain = "FP-HOSTLAB-EGRESS"

// labSysctls are the kernel settings a node needs: forwarding between the
// bridge's pods, and bridged traffic through iptables so that Service
// addresses work between pods on the same bridge.
var labSysctls = []struct{ key, value string }{
	{"net/ipv4/ip_forward", "1"},
	{"net/bridge/bridge-nf-call-iptables", "1"},
}

func sysctlPath(key string) string { return filepath.Join("/proc/sys", key) }

// setupNetwork sets the kernel settings (remembering the old values),
// creates the pod bridge with its gateway address (so that CoreDNS can
// listen there before the first pod), and the egress guard.
func setupNetwork(ctx context.Context, l layout, s settings) error {
	old := map[string]string{}
	for _, sc := range labSysctls {
		b, err := os.ReadFile(sysctlPath(sc.key))
		if err != nil {
			return fmt.Errorf("read %s: %w", sysctlPath(sc.key), err)
		}
		old[sc.key] = strings.TrimSpace(string(b))
	}
	b, _ := json.Marshal(old)
	if err := os.WriteFile(l.sysctls(), b, 0o644); err != nil {
		return err
	}
	for _, sc := range labSysctls {
		if err := os.WriteFile(sysctlPath(sc.key), []byte(sc.value), 0o644); err != nil {
			return fmt.Errorf("set %s=%s: %w", sc.key, sc.value, err)
		}
	}
	_, ipnet, err := net.ParseCIDR(s.PodCIDR)
	if err != nil {
		return fmt.Errorf("pod range %q: %w", s.PodCIDR, err)
	}
	ones, _ := ipnet.Mask.Size()
	for _, args := range [][]string{
		{"ip", "link", "add", "name", s.Bridge, "type", "bridge"},
		{"ip", "addr", "add", fmt.Sprintf("%s/%d", s.gatewayIP(), ones), "dev", s.Bridge},
		{"ip", "link", "set", s.Bridge, "up"},
		{"iptables", "-w", "-N", egressChain},
		{"iptables", "-w", "-A", egressChain, "-i", s.Bridge, "!", "-o", s.Bridge, "-m", "comment", "--comment",
			"falco-phantom hostlab: pods reach nothing outside this machine", "-j", "DROP"},
		{"iptables", "-w", "-I", "FORWARD", "1", "-j", egressChain},
	} {
		if err := run(ctx, args...); err != nil {
			return fmt.Errorf("pod network: %w", err)
		}
	}
	return nil
}

// teardownNetwork removes the bridge, the egress guard, the iptables
// chains of kube-proxy and the kubelet, kube-router's chains and ipsets,
// and restores the kernel settings.
func teardownNetwork(ctx context.Context, l layout, s settings) error {
	var errs []error
	if _, err := net.InterfaceByName(s.Bridge); err == nil {
		if err := run(ctx, "ip", "link", "del", s.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	// Delete every jump to the guard, then the chain.
	for run(ctx, "iptables", "-w", "-D", "FORWARD", "-j", egressChain) == nil {
	}
	if run(ctx, "iptables", "-w", "-L", egressChain, "-n") == nil {
		for _, args := range [][]string{{"iptables", "-w", "-F", egressChain}, {"iptables", "-w", "-X", egressChain}} {
			if err := run(ctx, args...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if proxy := s.tool("kube-proxy"); s.ToolsDir != "" && fileExists(proxy) {
		// kube-proxy removes its own chains and rules (iptables, ipvs and
		// nftables) with --cleanup; it needs no API server for that.
		if out, err := exec.CommandContext(ctx, proxy, "--cleanup", "--v=0").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("kube-proxy --cleanup: %w: %s", err, lastLines(string(out), 5)))
		}
	}
	errs = append(errs, removeKubeletChains(ctx), removeFirewall(ctx))
	if b, err := os.ReadFile(l.sysctls()); err == nil {
		old := map[string]string{}
		if err := json.Unmarshal(b, &old); err == nil {
			for key, value := range old {
				if err := os.WriteFile(sysctlPath(key), []byte(value), 0o644); err != nil {
					errs = append(errs, fmt.Errorf("restore %s=%s: %w", key, value, err))
				}
			}
		}
		if err := os.Remove(l.sysctls()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// kubeletChains are the chains the kubelet creates (kube-proxy --cleanup
// leaves them): canaries that watch for iptables flushes, and a firewall
// chain that INPUT and OUTPUT jump to.
var kubeletChains = []struct{ table, chain string }{
	{"mangle", "KUBE-IPTABLES-HINT"},
	{"mangle", "KUBE-KUBELET-CANARY"},
	{"nat", "KUBE-KUBELET-CANARY"},
	{"filter", "KUBE-KUBELET-CANARY"},
	{"filter", "KUBE-FIREWALL"},
}

func removeKubeletChains(ctx context.Context) error {
	var errs []error
	for _, bin := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			continue
		}
		for _, c := range kubeletChains {
			if run(ctx, bin, "-w", "-t", c.table, "-L", c.chain, "-n") != nil {
				continue
			}
			for _, from := range []string{"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"} {
				for run(ctx, bin, "-w", "-t", c.table, "-D", from, "-j", c.chain) == nil {
				}
			}
			for _, args := range [][]string{{bin, "-w", "-t", c.table, "-F", c.chain}, {bin, "-w", "-t", c.table, "-X", c.chain}} {
				if err := run(ctx, args...); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// run runs a command and returns its output in the error.
func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
