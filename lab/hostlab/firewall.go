package hostlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// What kube-router's policy firewall leaves in the filter table and in
// ipset when it stops: it removes nothing on exit, and its own
// --cleanup-config does not know the chains it made in an earlier run.
var (
	firewallChainPrefixes = []string{"KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-"}
	firewallSetPrefixes   = []string{"KUBE-SRC-", "KUBE-DST-", "inet6:KUBE-SRC-", "inet6:KUBE-DST-"}
)

func firewallName(name string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

// removeFirewall removes kube-router's chains, the rules that jump to
// them, and then its ipsets (a set in use by a rule cannot be removed).
func removeFirewall(ctx context.Context) error {
	var errs []error
	if _, err := exec.LookPath("iptables-save"); err == nil {
		out, err := exec.CommandContext(ctx, "iptables-save", "-t", "filter").Output()
		if err != nil {
			return fmt.Errorf("iptables-save -t filter: %w", err)
		}
		if script := firewallCleanup(string(out)); script != "" {
			cmd := exec.CommandContext(ctx, "iptables-restore", "-w", "--noflush")
			cmd.Stdin = strings.NewReader(script)
			if b, err := cmd.CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("remove kube-router's chains: iptables-restore: %w: %s", err, bytes.TrimSpace(b)))
			}
		}
	}
	if _, err := exec.LookPath("ipset"); err == nil {
		out, err := exec.CommandContext(ctx, "ipset", "list", "-n").Output()
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("ipset list -n: %w", err))...)
		}
		for _, name := range strings.Fields(string(out)) {
			if firewallName(name, firewallSetPrefixes) {
				if err := run(ctx, "ipset", "destroy", name); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// firewallCleanup turns the filter table, as iptables-save prints it, into
// an iptables-restore script that deletes every rule jumping to one of
// kube-router's chains from another chain, then flushes and deletes those
// chains; "" when there are none.
func firewallCleanup(save string) string {
	var chains, jumps []string
	for _, line := range strings.Split(save, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], ":") && firewallName(f[0][1:], firewallChainPrefixes):
			chains = append(chains, f[0][1:])
		case len(f) > 1 && f[0] == "-A" && !firewallName(f[1], firewallChainPrefixes):
			if i := slices.Index(f, "-j"); i >= 0 && i+1 < len(f) && firewallName(f[i+1], firewallChainPrefixes) {
				jumps = append(jumps, "-D"+strings.TrimPrefix(line, "-A"))
			}
		}
	}
	if len(chains) == 0 && len(jumps) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("*filter\n")
	for _, j := range jumps {
		b.WriteString(j + "\n")
	}
	for _, c := range chains {
		b.WriteString("-F " + c + "\n")
	}
	for _, c := range chains {
		b.WriteString("-X " + c + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
