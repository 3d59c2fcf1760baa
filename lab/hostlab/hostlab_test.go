package hostlab

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// These tests never touch the machine's network, mounts or processes
// beyond a child of their own: Up and Down are tested on a real lab by
// the end-to-end suite (test/e2e).

func testSettings(t *testing.T) settings {
	t.Helper()
	return Config{Dir: t.TempDir(), ToolsDir: "/tools", NodeIP: "192.0.2.7", NodeName: "node-a"}.resolve()
}

func TestResolveDefaults(t *testing.T) {
	t.Parallel()
	s := Config{NodeIP: "192.0.2.7", NodeName: "n"}.resolve()
	if s.Dir != DefaultDir || s.PodCIDR != DefaultPodCIDR || s.ServiceCIDR != DefaultServiceCIDR || s.Bridge != DefaultBridge ||
		s.APIPort != DefaultAPIPort || s.EtcdPort != DefaultEtcdPort || s.Busybox != "/bin/busybox" {
		t.Errorf("defaults = %+v", s)
	}
	for _, tt := range []struct {
		got  net.IP
		want string
	}{
		{s.apiServiceIP(), "10.96.0.1"}, {s.gatewayIP(), "10.244.0.1"}, {nthIP("10.1.2.0/24", 9), "10.1.2.9"},
	} {
		if tt.got.String() != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
	if got := s.apiServerURL(); got != "https://192.0.2.7:6443" {
		t.Errorf("API server URL %s", got)
	}
	if nthIP("not a cidr", 1) != nil {
		t.Error("nthIP of garbage is not nil")
	}
}

func TestPKI(t *testing.T) {
	t.Parallel()
	s := testSettings(t)
	l := s.layout()
	if err := writePKI(l, s); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, l.pki("ca.crt")))
	verify := func(name string, usage x509.ExtKeyUsage, host string) *x509.Certificate {
		t.Helper()
		c := readCert(t, l.pki(name+".crt"))
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("%s (host %q): %v", name, host, err)
		}
		return c
	}
	// Clients reach the API server by the node address, by its Service
	// (from pods) and by name.
	for _, host := range []string{"192.0.2.7", "10.96.0.1", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "127.0.0.1"} {
		verify("apiserver", x509.ExtKeyUsageServerAuth, host)
	}
	verify("kubelet", x509.ExtKeyUsageServerAuth, "192.0.2.7")
	for name, want := range map[string][2]string{
		"admin":                    {"hostlab-admin", "system:masters"},
		"kubelet-client":           {"system:node:node-a", "system:nodes"},
		"apiserver-kubelet-client": {"kube-apiserver-kubelet-client", "system:masters"},
	} {
		c := verify(name, x509.ExtKeyUsageClientAuth, "")
		if c.Subject.CommonName != want[0] || len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != want[1] {
			t.Errorf("%s: subject %s, want CN=%s O=%s", name, c.Subject, want[0], want[1])
		}
	}
	for _, key := range []string{"ca.key", "admin.key", "sa.key"} {
		if fi, err := os.Stat(l.pki(key)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", key, err, fi.Mode())
		}
	}
	for _, user := range []string{"admin", "kubelet"} {
		cfg, err := clientcmd.BuildConfigFromFlags("", l.kubeconfig(user))
		if err != nil {
			t.Fatalf("%s kubeconfig: %v", user, err)
		}
		if cfg.Host != "https://192.0.2.7:6443" || len(cfg.CAData) == 0 || len(cfg.CertData) == 0 || len(cfg.KeyData) == 0 {
			t.Errorf("%s kubeconfig: host %s, CA %d bytes, cert %d, key %d", user, cfg.Host, len(cfg.CAData), len(cfg.CertData), len(cfg.KeyData))
		}
	}
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM", file)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The settings that this kind of machine needs (REFERENCE section 8) are
// the ones a refactoring would most easily lose.
func TestConfigsCarryWhatThisMachineNeeds(t *testing.T) {
	t.Parallel()
	s := testSettings(t)
	l := s.layout()
	if err := writeConfigs(l, s, ""); err != nil {
		t.Fatal(err)
	}
	ctrd, _ := os.ReadFile(l.containerdConf())
	for _, want := range []string{
		"restrict_oom_score_adj = true", "SystemdCgroup = false", "netns_mounts_under_state_dir = true",
		`sandbox_image = "` + PauseImage + `"`, `bin_dir = "` + s.CNIBinDir + `"`,
	} {
		if !strings.Contains(string(ctrd), want) {
			t.Errorf("containerd config lacks %s", want)
		}
	}
	// Everything containerd keeps is below the lab folder.
	for _, line := range strings.Split(string(ctrd), "\n") {
		for _, key := range []string{"root =", "state =", "address =", "path =", "Root =", "conf_dir ="} {
			if strings.HasPrefix(strings.TrimSpace(line), key) && !strings.Contains(line, `"`+s.Dir+"/") {
				t.Errorf("containerd config: %s is outside the lab folder %s", strings.TrimSpace(line), s.Dir)
			}
		}
	}
	var kubelet map[string]any
	b, _ := os.ReadFile(l.kubeletConf())
	if err := yaml.Unmarshal(b, &kubelet); err != nil {
		t.Fatalf("kubelet config: %v\n%s", err, b)
	}
	for key, want := range map[string]any{
		"failCgroupV1": false, "cgroupsPerQOS": false, "cgroupDriver": "cgroupfs", "failSwapOn": false,
		"address": "192.0.2.7", "containerRuntimeEndpoint": "unix://" + l.containerdSock(),
		"clusterDNS": []any{"10.244.0.1"}, "enforceNodeAllocatable": []any{}, "podLogsDir": l.podLogs(),
	} {
		if got, _ := json.Marshal(kubelet[key]); string(got) != mustJSON(want) {
			t.Errorf("kubelet %s = %s, want %s", key, got, mustJSON(want))
		}
	}
	var cni struct {
		Plugins []struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
			IPMasq bool   `json:"ipMasq"`
			IPAM   struct {
				DataDir string `json:"dataDir"`
				Ranges  [][]struct{ Subnet, Gateway string }
			} `json:"ipam"`
		} `json:"plugins"`
	}
	b, _ = os.ReadFile(filepath.Join(l.cniConfDir(), "10-hostlab.conflist"))
	if err := json.Unmarshal(b, &cni); err != nil || len(cni.Plugins) != 1 {
		t.Fatalf("CNI config: %v\n%s", err, b)
	}
	p := cni.Plugins[0]
	if p.Type != "bridge" || p.Bridge != DefaultBridge || p.IPMasq || p.IPAM.DataDir != l.cniIPAM() ||
		p.IPAM.Ranges[0][0].Subnet != DefaultPodCIDR || p.IPAM.Ranges[0][0].Gateway != "10.244.0.1" {
		t.Errorf("CNI bridge = %+v", p)
	}
	core, _ := os.ReadFile(l.corefile())
	if !strings.Contains(string(core), "bind 10.244.0.1") || strings.Contains(string(core), "forward") {
		t.Errorf("Corefile must serve on the bridge only and forward nothing:\n%s", core)
	}
	proxy, _ := os.ReadFile(l.proxyConf())
	if !strings.Contains(string(proxy), "mode: iptables") || !strings.Contains(string(proxy), "maxPerCore: 0") {
		t.Errorf("kube-proxy config:\n%s", proxy)
	}
}

func TestAuditLogOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	s := testSettings(t)
	l := s.layout()
	if args := strings.Join(daemons(l, s, "/helper")["kube-apiserver"].args, " "); strings.Contains(args, "--audit") {
		t.Errorf("API server audits without a policy: %s", args)
	}
	s = Config{Dir: s.Dir, NodeIP: "192.0.2.7", AuditPolicy: "apiVersion: audit.k8s.io/v1\nkind: Policy\n"}.resolve()
	args := strings.Join(daemons(l, s, "/helper")["kube-apiserver"].args, " ")
	for _, want := range []string{"--audit-policy-file=" + l.auditPolicy(), "--audit-log-path=" + l.auditLog()} {
		if !strings.Contains(args, want) {
			t.Errorf("API server args lack %s: %s", want, args)
		}
	}
	if err := writeConfigs(l, s, "apiVersion: audit.k8s.io/v1\nkind: Policy\n"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(l.auditPolicy()); err != nil || !strings.Contains(string(b), "kind: Policy") {
		t.Errorf("audit policy file: %q, %v", b, err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestDaemonsLogAndStopByRecord(t *testing.T) {
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command")
	}
	l := layout{root: t.TempDir()}
	for _, d := range []string{l.logs(), l.pids()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err := start(l, daemon{name: "sleeper", path: sleep, args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := readPid(l.pidFile("sleeper"))
	if err != nil || r.PID != s.pid || !r.alive() {
		t.Fatalf("pid record %+v (%v), want the running pid %d", r, err, s.pid)
	}
	// A record whose start time differs names another process that
	// reuses the number: it must never be signalled.
	stranger := r
	stranger.Start++
	if stranger.alive() {
		t.Error("a record with another start time counts as alive")
	}
	if got := processes(l); !got["sleeper"] {
		t.Errorf("processes() = %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := stopRecorded(ctx, l, "sleeper", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-ctx.Done():
		t.Fatal("sleeper still runs after stopRecorded")
	}
	if _, err := os.Stat(l.pidFile("sleeper")); !os.IsNotExist(err) {
		t.Errorf("pid file left behind (%v)", err)
	}
	if !strings.Contains(logTail(l, "sleeper", 5), "=== hostlab:") {
		t.Errorf("log of sleeper lacks the start line: %q", logTail(l, "sleeper", 5))
	}
	if err := stopRecorded(ctx, l, "sleeper", time.Second); err != nil {
		t.Errorf("stopping a stopped daemon: %v", err)
	}
}

func TestUnescapeMount(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`/var/lib/a`:             "/var/lib/a",
		`/var/lib/with\040space`: "/var/lib/with space",
		`/tab\011x\134y`:         "/tab\tx\\y",
		`/trailing\04`:           `/trailing\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckNamesTheFix(t *testing.T) {
	t.Parallel()
	s := Config{Dir: t.TempDir(), ToolsDir: t.TempDir(), Busybox: filepath.Join(t.TempDir(), "busybox"), NodeIP: "192.0.2.7"}.resolve()
	problems := strings.Join(check(s), "\n")
	for _, want := range []string{"bash build/tools/build.sh", "apt-get install busybox-static"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}
	for _, p := range check(s) {
		if strings.Contains(p, "\n") {
			t.Errorf("problem is not one line: %q", p)
		}
	}
}

func TestProvisionerGivesClaimsAVolumeAndRemovesIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	class := StorageClass
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "ns", UID: "1234"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	other := "other"
	foreign := claim.DeepCopy()
	foreign.Name, foreign.UID, foreign.Spec.StorageClassName = "foreign", "5678", &other
	kube := fake.NewClientset(claim, foreign)
	p := &provisioner{kube: kube, dir: t.TempDir(), log: discardLogger()}
	if err := p.sync(ctx); err != nil {
		t.Fatal(err)
	}
	pvs, _ := kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if len(pvs.Items) != 1 {
		t.Fatalf("%d volumes, want 1 (only for the claim of class %s)", len(pvs.Items), StorageClass)
	}
	pv := pvs.Items[0]
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != "1234" || pv.Spec.StorageClassName != StorageClass ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Annotations[annProvisionedBy] != ProvisionerName {
		t.Errorf("volume = %+v", pv)
	}
	dir := pv.Spec.HostPath.Path
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o777 || filepath.Dir(dir) != p.dir {
		t.Fatalf("volume folder %s: %v; want a world-writable folder in %s", dir, err, p.dir)
	}
	// A second pass makes nothing new.
	if err := p.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if pvs, _ := kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{}); len(pvs.Items) != 1 {
		t.Errorf("second sync: %d volumes", len(pvs.Items))
	}
	// Released (its claim deleted): the volume and its folder go.
	pv.Status.Phase = corev1.VolumeReleased
	if _, err := kube.CoreV1().PersistentVolumes().UpdateStatus(ctx, &pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if pvs, _ := kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{}); len(pvs.Items) != 0 {
		t.Errorf("released volume not deleted: %d left", len(pvs.Items))
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("volume folder %s not removed (%v)", dir, err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestFirewallCleanupRemovesKubeRoutersChainsOnly checks the script Down
// feeds to iptables-restore: the jumps into kube-router's chains go first
// (quoted comments kept whole), then its chains are flushed and deleted;
// kube-proxy's chains and the lab's egress guard are left to their own
// clean-up.
func TestFirewallCleanupRemovesKubeRoutersChainsOnly(t *testing.T) {
	save := `# Generated by iptables-save
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:FP-HOSTLAB-EGRESS - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NWPLCY-DEFAULT - [0:0]
:KUBE-POD-FW-ABCDEF - [0:0]
:KUBE-ROUTER-FORWARD - [0:0]
-A INPUT -m comment --comment "kube-router netpol - 4IA2OSFRMVNDXBVV" -j KUBE-ROUTER-INPUT
-A FORWARD -m comment --comment "kube-router netpol - TEMCG2JMHZYE7H7T" -j KUBE-ROUTER-FORWARD
-A FORWARD -j FP-HOSTLAB-EGRESS
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-ROUTER-FORWARD -d 10.244.0.5/32 -j KUBE-POD-FW-ABCDEF
-A KUBE-POD-FW-ABCDEF -j KUBE-NWPLCY-DEFAULT
COMMIT
`
	want := `*filter
-D INPUT -m comment --comment "kube-router netpol - 4IA2OSFRMVNDXBVV" -j KUBE-ROUTER-INPUT
-D FORWARD -m comment --comment "kube-router netpol - TEMCG2JMHZYE7H7T" -j KUBE-ROUTER-FORWARD
-F KUBE-NWPLCY-DEFAULT
-F KUBE-POD-FW-ABCDEF
-F KUBE-ROUTER-FORWARD
-X KUBE-NWPLCY-DEFAULT
-X KUBE-POD-FW-ABCDEF
-X KUBE-ROUTER-FORWARD
COMMIT
`
	if got := firewallCleanup(save); got != want {
		t.Errorf("script:\n%s\nwant:\n%s", got, want)
	}
	if got := firewallCleanup("*filter\n:INPUT ACCEPT [0:0]\n-A FORWARD -j FP-HOSTLAB-EGRESS\nCOMMIT\n"); got != "" {
		t.Errorf("without kube-router's chains: %q, want none", got)
	}
}
