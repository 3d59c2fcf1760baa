package hostlab

import "path/filepath"

// layout names every file and folder of a lab. Everything a lab creates
// on disk lives below its root, so that Down can find it after a crash.
type layout struct{ root string }

func (l layout) path(elem ...string) string {
	return filepath.Join(append([]string{l.root}, elem...)...)
}

func (l layout) pki(name string) string { return l.path("pki", name) }
func (l layout) logs() string           { return l.path("logs") }
func (l layout) log(name string) string { return l.path("logs", name+".log") }
func (l layout) pids() string           { return l.path("run") }
func (l layout) pidFile(name string) string {
	return l.path("run", name+".pid")
}
func (l layout) etcdData() string        { return l.path("etcd") }
func (l layout) containerdRoot() string  { return l.path("containerd", "root") }
func (l layout) containerdState() string { return l.path("containerd", "state") }
func (l layout) containerdSock() string  { return l.path("containerd", "containerd.sock") }
func (l layout) containerdConf() string  { return l.path("containerd", "config.toml") }

// runcRoot is where runc keeps the state of the containers; the runc
// shim adds the containerd namespace ("k8s.io") below it.
func (l layout) runcRoot() string      { return l.path("containerd", "runc") }
func (l layout) cniConfDir() string    { return l.path("cni", "net.d") }
func (l layout) cniIPAM() string       { return l.path("cni", "ipam") }
func (l layout) kubeletRoot() string   { return l.path("kubelet") }
func (l layout) kubeletConf() string   { return l.path("config", "kubelet.yaml") }
func (l layout) proxyConf() string     { return l.path("config", "kube-proxy.yaml") }
func (l layout) corefile() string      { return l.path("config", "Corefile") }
func (l layout) resolvConf() string    { return l.path("config", "resolv.conf") }
func (l layout) auditPolicy() string   { return l.path("config", "audit-policy.yaml") }
func (l layout) auditLog() string      { return l.path("logs", "audit.log") }
func (l layout) podLogs() string       { return l.path("pod-logs") }
func (l layout) volumePlugins() string { return l.path("volume-plugins") }
func (l layout) volumes() string       { return l.path("volumes") }
func (l layout) bin() string           { return l.path("bin") }
func (l layout) images() string        { return l.path("images") }

// kubeconfig of a client identity: admin, kubelet.
func (l layout) kubeconfig(name string) string { return l.path(name + ".kubeconfig") }

// sysctls records the kernel settings Up changed, with their old values,
// so that Down can put them back.
func (l layout) sysctls() string { return l.path("sysctl.json") }

// state records the settings of the running lab (state.json).
func (l layout) state() string { return l.path("state.json") }
