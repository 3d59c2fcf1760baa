// Package hostlab runs a real single-node Kubernetes cluster on this
// machine, without Docker or an image registry: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler as host processes, a
// containerd of its own with runc and the CNI bridge plugin, a kubelet,
// kube-proxy in iptables mode, CoreDNS on the pod bridge, and a small
// storage provisioner for PersistentVolumeClaims. Images come from image
// archives imported into the node's containerd.
//
// It needs root, the Debian packages containerd, runc,
// containernetworking-plugins, iptables, conntrack and busybox-static, and
// the Kubernetes binaries built by build/tools/build.sh. Check lists what is
// missing.
//
// Everything the lab creates on disk lives below one folder (Config.Dir);
// the pid of every process it starts is recorded there, so that Down stops
// them and removes mounts, the pod bridge, iptables chains and network
// namespaces even after the process that ran Up crashed. Up runs Down
// first, so a lab always starts clean.
package hostlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults of a lab.
const (
	DefaultDir         = "/var/lib/falco-phantom-hostlab"
	DefaultPodCIDR     = "10.244.0.0/24"
	DefaultServiceCIDR = "10.96.0.0/24"
	DefaultBridge      = "fphostlab0"
	DefaultAPIPort     = 6443
	DefaultEtcdPort    = 2379

	// ContextName is the kubeconfig context (and cluster) name.
	ContextName = "falco-phantom-hostlab"
	// StorageClass is the default StorageClass; claims of it get a
	// hostPath volume below Config.Dir.
	StorageClass = "hostlab"
	// PauseImage is the sandbox ("pause") image of the node, built by Up
	// from busybox.
	PauseImage = "ghcr.io/falco-phantom/pause:hostlab"

	clusterDomain = "cluster.local"
	// Fixed local ports of the components, all on 127.0.0.1.
	kubeletHealthzPort = 10248
	kubeletPort        = 10250
	proxyHealthzPort   = 10256
	proxyMetricsPort   = 10249
	controllerPort     = 10257
	schedulerPort      = 10259
	corednsReadyPort   = 10281
	// kube-router serves its health check on every address (it has no
	// flag for the address).
	kubeRouterHealthPort = 10283
)

// Config says where and how to run a lab. The zero value of every field
// but ToolsDir is a usable default.
type Config struct {
	// Dir holds everything of the lab; default DefaultDir.
	Dir string
	// ToolsDir holds kube-apiserver, kubelet, kube-controller-manager,
	// kube-scheduler, kube-proxy, etcd, coredns and kube-router
	// (build/tools/build.sh prints it). Down needs it only for "kube-proxy --cleanup".
	ToolsDir string
	// NodeIP is the node's address: default the first global IPv4
	// address of an interface that is up. Loopback and link-local
	// addresses are refused by the kubelet.
	NodeIP string
	// NodeName defaults to the host name in lower case.
	NodeName    string
	PodCIDR     string
	ServiceCIDR string
	// Bridge is the name of the pods' bridge.
	Bridge   string
	APIPort  int
	EtcdPort int
	// Images are image archives (docker-archive tarballs) imported into
	// the node's containerd before it runs pods.
	Images []string
	// Busybox is a static busybox binary for the pause image; default
	// /bin/busybox (Debian package busybox-static).
	Busybox string
	// AuditPolicy, when set, is an audit policy (audit.k8s.io/v1 YAML):
	// the API server then writes its audit log to Cluster.AuditLog, for
	// tools that follow it (test/standin/falco does).
	AuditPolicy string
	// Timeout bounds each wait of Up (default 3 minutes).
	Timeout time.Duration
	// Log receives one line per step; nil discards them.
	Log io.Writer
}

// settings is a Config with every default resolved; it is stored in the
// lab folder so that Down and Load work with the values Up used.
type settings struct {
	Dir         string `json:"dir"`
	ToolsDir    string `json:"toolsDir"`
	NodeIP      string `json:"nodeIP"`
	NodeName    string `json:"nodeName"`
	PodCIDR     string `json:"podCIDR"`
	ServiceCIDR string `json:"serviceCIDR"`
	Bridge      string `json:"bridge"`
	APIPort     int    `json:"apiPort"`
	EtcdPort    int    `json:"etcdPort"`
	CNIBinDir   string `json:"cniBinDir"`
	Busybox     string `json:"busybox"`
	Audit       bool   `json:"audit"`
}

// resolve fills in the defaults. Addresses that cannot be found are left
// empty; Check reports them.
func (c Config) resolve() settings {
	s := settings{
		Dir: c.Dir, ToolsDir: c.ToolsDir, NodeIP: c.NodeIP, NodeName: c.NodeName, PodCIDR: c.PodCIDR,
		ServiceCIDR: c.ServiceCIDR, Bridge: c.Bridge, APIPort: c.APIPort, EtcdPort: c.EtcdPort, Busybox: c.Busybox,
		Audit: c.AuditPolicy != "",
	}
	if s.Dir == "" {
		s.Dir = DefaultDir
	}
	s.Dir = filepath.Clean(s.Dir)
	if s.NodeIP == "" {
		s.NodeIP, _ = defaultNodeIP()
	}
	if s.NodeName == "" {
		h, _ := os.Hostname()
		s.NodeName = strings.ToLower(strings.SplitN(h, ".", 2)[0])
	}
	if s.PodCIDR == "" {
		s.PodCIDR = DefaultPodCIDR
	}
	if s.ServiceCIDR == "" {
		s.ServiceCIDR = DefaultServiceCIDR
	}
	if s.Bridge == "" {
		s.Bridge = DefaultBridge
	}
	if s.APIPort == 0 {
		s.APIPort = DefaultAPIPort
	}
	if s.EtcdPort == 0 {
		s.EtcdPort = DefaultEtcdPort
	}
	if s.Busybox == "" {
		s.Busybox = "/bin/busybox"
	}
	s.CNIBinDir = cniBinDir()
	return s
}

func (s settings) layout() layout { return layout{root: s.Dir} }

func (s settings) apiServerURL() string {
	return fmt.Sprintf("https://%s", net.JoinHostPort(s.NodeIP, fmt.Sprint(s.APIPort)))
}

// nthIP returns the n-th address of a CIDR (1 is the first after the
// network address).
func nthIP(cidr string, n int) net.IP {
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil
	}
	ip := ipnet.IP.To4()
	if ip == nil {
		return nil
	}
	out := make(net.IP, 4)
	copy(out, ip)
	out[3] += byte(n)
	return out
}

// apiServiceIP is the ClusterIP of Service kubernetes.default.
func (s settings) apiServiceIP() net.IP { return nthIP(s.ServiceCIDR, 1) }

// gatewayIP is the pod bridge's address: the pods' gateway, and where
// CoreDNS listens.
func (s settings) gatewayIP() net.IP { return nthIP(s.PodCIDR, 1) }

func (s settings) tool(name string) string { return filepath.Join(s.ToolsDir, name) }

// defaultNodeIP returns the first global IPv4 address of an interface that
// is up and not a loopback.
func defaultNodeIP() (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			ipnet, ok := a.(*net.IPNet)
			if !ok || ipnet.IP.To4() == nil || !ipnet.IP.IsGlobalUnicast() {
				continue
			}
			return ipnet.IP.String(), nil
		}
	}
	return "", errors.New("no interface with a global IPv4 address is up")
}

// cniBinDir is where the CNI plugins are: Debian's
// containernetworking-plugins puts them in /usr/lib/cni.
func cniBinDir() string {
	for _, dir := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if _, err := os.Stat(filepath.Join(dir, "bridge")); err == nil {
			return dir
		}
	}
	return "/usr/lib/cni"
}

func saveSettings(s settings) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(s.layout().state(), b, 0o644)
}

// loadSettings reads what Up recorded; ok is false when no lab was set up
// in dir.
func loadSettings(dir string) (settings, bool, error) {
	var s settings
	b, err := os.ReadFile(layout{root: filepath.Clean(dir)}.state())
	if errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, false, fmt.Errorf("lab state %s: %w", dir, err)
	}
	return s, true, nil
}

// logf writes one progress line.
func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
