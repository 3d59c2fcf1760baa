package hostlab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// containerdConfig is containerd's configuration: its own root, state and
// socket below the lab folder, so that it never meets a containerd of the
// machine.
func containerdConfig(l layout, s settings) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
# The lab's containerd must not be the first the OOM killer spares.
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # This machine forbids lowering oom_score_adj: without this every pod
  # sandbox fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # Network namespaces below the state folder, so that Down finds them.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        # runc's state below the lab folder: Down can find and end the
        # containers even when containerd is gone.
        Root = %q

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
    max_conf_num = 1
`, l.containerdRoot(), l.containerdState(), l.containerdSock(), l.containerdSock()+".ttrpc",
		l.path("containerd", "opt"), PauseImage, l.runcRoot(), s.CNIBinDir, l.cniConfDir())
}

// cniConfig is the pod network: one bridge, addresses from host-local,
// no masquerading (nothing leaves the machine).
func cniConfig(l layout, s settings) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "hostlab",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      s.Bridge,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": l.cniIPAM(),
					"ranges":  []any{[]any{map[string]any{"subnet": s.PodCIDR, "gateway": s.gatewayIP().String()}}},
					"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
				},
			},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// kubeletConfig is the KubeletConfiguration. The settings that differ
// from a production node are the ones this kind of machine needs (see
// REFERENCE section 8): cgroupfs without QoS cgroups on a cgroup v1 host,
// and no eviction for a nearly full disk.
func kubeletConfig(l layout, s settings) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: %[2]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[3]d
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[4]s
authorization:
  mode: Webhook
tlsCertFile: %[5]s
tlsPrivateKeyFile: %[6]s
containerRuntimeEndpoint: unix://%[7]s
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
clusterDomain: %[8]s
clusterDNS: [%[9]s]
resolvConf: %[10]s
podCIDR: %[11]s
podLogsDir: %[12]s
maxPods: 110
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 50Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
evictionPressureTransitionPeriod: 10s
nodeStatusReportFrequency: 10s
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
fileCheckFrequency: 10s
containerLogMaxSize: 5Mi
containerLogMaxFiles: 2
rotateCertificates: false
serverTLSBootstrap: false
`, s.NodeIP, kubeletPort, kubeletHealthzPort, l.pki("ca.crt"), l.pki("kubelet.crt"), l.pki("kubelet.key"),
		l.containerdSock(), clusterDomain, s.gatewayIP(), l.resolvConf(), s.PodCIDR, l.podLogs())
}

// proxyConfig is kube-proxy's configuration: iptables mode, and no change
// to the machine's conntrack settings.
func proxyConfig(l layout, s settings) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
mode: iptables
clusterCIDR: %s
hostnameOverride: %s
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, l.kubeconfig("admin"), s.PodCIDR, s.NodeName, proxyHealthzPort, proxyMetricsPort)
}

// corefile serves the cluster zone on the bridge's address only. Other
// names are refused, not forwarded: nothing a pod asks leaves the machine.
func corefile(l layout, s settings) string {
	return fmt.Sprintf(`%[1]s:53 in-addr.arpa:53 ip6.arpa:53 {
    bind %[2]s
    errors
    ready 127.0.0.1:%[3]d
    kubernetes %[1]s in-addr.arpa ip6.arpa {
        kubeconfig %[4]s %[5]s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
}
`, clusterDomain, s.gatewayIP(), corednsReadyPort, l.kubeconfig("admin"), ContextName)
}

// daemons returns the command lines of the lab's processes, in start order.
func daemons(l layout, s settings, helper string) map[string]daemon {
	admin := l.kubeconfig("admin")
	etcdPeer := s.EtcdPort + 1
	ds := map[string]daemon{
		"etcd": {name: "etcd", path: s.tool("etcd"), args: []string{
			"--name=hostlab",
			"--data-dir=" + l.etcdData(),
			"--listen-client-urls=http://127.0.0.1:" + strconv.Itoa(s.EtcdPort),
			"--advertise-client-urls=http://127.0.0.1:" + strconv.Itoa(s.EtcdPort),
			"--listen-peer-urls=http://127.0.0.1:" + strconv.Itoa(etcdPeer),
			"--initial-advertise-peer-urls=http://127.0.0.1:" + strconv.Itoa(etcdPeer),
			"--initial-cluster=hostlab=http://127.0.0.1:" + strconv.Itoa(etcdPeer),
			"--unsafe-no-fsync",
			"--quota-backend-bytes=2147483648",
			"--log-level=warn",
		}},
		"kube-apiserver": {name: "kube-apiserver", path: s.tool("kube-apiserver"), args: []string{
			"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(s.EtcdPort),
			"--bind-address=" + s.NodeIP,
			"--advertise-address=" + s.NodeIP,
			"--secure-port=" + strconv.Itoa(s.APIPort),
			"--service-cluster-ip-range=" + s.ServiceCIDR,
			"--client-ca-file=" + l.pki("ca.crt"),
			"--tls-cert-file=" + l.pki("apiserver.crt"),
			"--tls-private-key-file=" + l.pki("apiserver.key"),
			"--kubelet-client-certificate=" + l.pki("apiserver-kubelet-client.crt"),
			"--kubelet-client-key=" + l.pki("apiserver-kubelet-client.key"),
			"--kubelet-certificate-authority=" + l.pki("ca.crt"),
			"--kubelet-preferred-address-types=InternalIP",
			"--service-account-issuer=https://kubernetes.default.svc." + clusterDomain,
			"--service-account-key-file=" + l.pki("sa.pub"),
			"--service-account-signing-key-file=" + l.pki("sa.key"),
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--allow-privileged=true",
			"--profiling=false",
			"--cert-dir=" + l.path("apiserver"),
			"--v=1",
		}},
		"kube-controller-manager": {name: "kube-controller-manager", path: s.tool("kube-controller-manager"), args: []string{
			"--kubeconfig=" + admin,
			"--authentication-kubeconfig=" + admin,
			"--authorization-kubeconfig=" + admin,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(controllerPort),
			"--cert-dir=" + l.path("controller-manager"),
			"--root-ca-file=" + l.pki("ca.crt"),
			"--service-account-private-key-file=" + l.pki("sa.key"),
			"--cluster-signing-cert-file=" + l.pki("ca.crt"),
			"--cluster-signing-key-file=" + l.pki("ca.key"),
			"--service-cluster-ip-range=" + s.ServiceCIDR,
			"--cluster-name=hostlab",
			"--leader-elect=false",
			"--use-service-account-credentials=true",
			"--v=1",
		}},
		"kube-scheduler": {name: "kube-scheduler", path: s.tool("kube-scheduler"), args: []string{
			"--kubeconfig=" + admin,
			"--authentication-kubeconfig=" + admin,
			"--authorization-kubeconfig=" + admin,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(schedulerPort),
			"--cert-dir=" + l.path("scheduler"),
			"--leader-elect=false",
			"--v=1",
		}},
		"containerd": {name: "containerd", path: "containerd", args: []string{"--config", l.containerdConf()}},
		"coredns":    {name: "coredns", path: s.tool("coredns"), args: []string{"-conf", l.corefile()}},
		"kubelet": {name: "kubelet", path: s.tool("kubelet"), args: []string{
			"--config=" + l.kubeletConf(),
			"--kubeconfig=" + l.kubeconfig("kubelet"),
			"--root-dir=" + l.kubeletRoot(),
			"--cert-dir=" + l.path("kubelet-pki"),
			"--node-ip=" + s.NodeIP,
			"--hostname-override=" + s.NodeName,
			"--volume-plugin-dir=" + l.volumePlugins(),
			"--v=1",
		}},
		"kube-proxy": {name: "kube-proxy", path: s.tool("kube-proxy"), args: []string{
			"--config=" + l.proxyConf(),
			"--v=1",
		}},
		// kube-router's firewall alone enforces NetworkPolicies (iptables
		// and ipset); the bridge, kube-proxy and CoreDNS do the rest.
		"kube-router": {name: "kube-router", path: s.tool("kube-router"), args: []string{
			"--kubeconfig=" + admin,
			"--hostname-override=" + s.NodeName,
			"--run-firewall=true",
			"--run-router=false",
			"--run-service-proxy=false",
			"--enable-cni=false",
			"--service-cluster-ip-range=" + s.ServiceCIDR,
			// It coalesces the syncs that pod and policy changes ask for;
			// a full sync every 10 s bounds how long a change can wait.
			"--iptables-sync-period=10s",
			"--health-port=" + strconv.Itoa(kubeRouterHealthPort),
			"--metrics-port=0",
			"--v=1",
		}},
		"provisioner": {name: "provisioner", path: helper, args: []string{
			"--kubeconfig=" + admin, "--dir=" + l.volumes(),
		}, env: []string{helperEnv + "=" + helperProvisioner}},
	}
	if s.Audit {
		api := ds["kube-apiserver"]
		api.args = append(api.args, "--audit-policy-file="+l.auditPolicy(), "--audit-log-path="+l.auditLog(),
			"--audit-log-maxsize=100", "--audit-log-maxbackup=1")
		ds["kube-apiserver"] = api
	}
	return ds
}

// writeConfigs writes every configuration file of the lab.
func writeConfigs(l layout, s settings, auditPolicy string) error {
	cni, err := cniConfig(l, s)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		l.containerdConf(): []byte(containerdConfig(l, s)),
		filepath.Join(l.cniConfDir(), "10-hostlab.conflist"): cni,
		l.kubeletConf(): []byte(kubeletConfig(l, s)),
		l.proxyConf():   []byte(proxyConfig(l, s)),
		l.corefile():    []byte(corefile(l, s)),
		// Pods get the cluster's resolver and search path only: nothing
		// of the machine's resolver configuration.
		l.resolvConf(): []byte("# hostlab: pods resolve cluster names only\n"),
	}
	if s.Audit {
		files[l.auditPolicy()] = []byte(auditPolicy)
	}
	for file, content := range files {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(file, content, 0o644); err != nil {
			return err
		}
	}
	return nil
}
