package hostlab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is a running lab.
type Cluster struct {
	// Dir is the lab folder.
	Dir string
	// Kubeconfig is an admin kubeconfig file (group system:masters).
	Kubeconfig string
	Config     *rest.Config
	Kube       kubernetes.Interface
	NodeName   string
	NodeIP     string
	// DNSIP is the cluster DNS server's address (the pod bridge's gateway).
	DNSIP string
	// AuditLog is the API server's audit log; "" unless Config.AuditPolicy
	// was set.
	AuditLog string
	// ContainerdSocket is the node's containerd (and CRI) socket.
	ContainerdSocket string
	// ContainerdTasks is containerd's folder of the running tasks of
	// Kubernetes containers: one folder per container id, holding its OCI
	// bundle.
	ContainerdTasks string

	settings settings
}

// Up brings up a one-node cluster. It first removes whatever a previous
// lab left in the same folder, so it also recovers from a crash. When Up
// fails, what it started keeps running for inspection (logs in
// Dir/logs); Down removes it. Progress goes to Config.Log, a line per
// step and per wait (what it waited for, how long); an error names the
// step that failed.
func Up(ctx context.Context, cfg Config) (*Cluster, error) {
	begin := time.Now()
	u, err := prepare(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r := &stepRunner{l: u.l, w: cfg.Log, timeout: cfg.Timeout}
	if r.timeout <= 0 {
		r.timeout = 3 * time.Minute
	}
	if err := r.run(ctx, u.steps(cfg.Images)); err != nil {
		return nil, err
	}
	logf(cfg.Log, "hostlab: cluster up in %s; kubeconfig %s", time.Since(begin).Round(100*time.Millisecond), u.l.kubeconfig("admin"))
	return newCluster(u.s, u.restCfg, u.kube), nil
}

func newCluster(s settings, cfg *rest.Config, kube kubernetes.Interface) *Cluster {
	l := s.layout()
	c := &Cluster{
		Dir: s.Dir, Kubeconfig: l.kubeconfig("admin"), Config: cfg, Kube: kube,
		NodeName: s.NodeName, NodeIP: s.NodeIP, DNSIP: s.gatewayIP().String(), settings: s,
		ContainerdSocket: l.containerdSock(),
		ContainerdTasks:  l.path("containerd", "state", "io.containerd.runtime.v2.task", containerdNamespace),
	}
	if s.Audit {
		c.AuditLog = l.auditLog()
	}
	return c
}

// upper is what the steps of Up share: the lab's settings and folder, its
// daemons and a client of its API server.
type upper struct {
	l       layout
	s       settings
	ds      map[string]daemon
	restCfg *rest.Config
	kube    kubernetes.Interface
}

// prepare checks the machine, removes the previous lab and writes the
// lab folder: certificates, configuration, the helper program, the
// network. Nothing runs yet.
func prepare(ctx context.Context, cfg Config) (*upper, error) {
	s := cfg.resolve()
	if problems := check(s); len(problems) > 0 {
		return nil, &PrerequisiteError{Problems: problems}
	}
	if err := Down(ctx, cfg); err != nil {
		return nil, fmt.Errorf("clean up the previous lab in %s: %w", s.Dir, err)
	}
	l := s.layout()
	_ = os.RemoveAll(l.logs()) // the previous lab's logs, kept by Down for inspection
	for _, dir := range []string{l.root, l.logs(), l.pids(), l.pki(""), l.etcdData(), l.containerdRoot(), l.containerdState(),
		l.cniConfDir(), l.cniIPAM(), l.kubeletRoot(), l.podLogs(), l.volumePlugins(), l.volumes(), l.bin(), l.images()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	// Recorded first: from here on Down knows what to clean up.
	if err := saveSettings(s); err != nil {
		return nil, err
	}
	logf(cfg.Log, "hostlab: node %s at %s, pods %s, services %s, lab folder %s", s.NodeName, s.NodeIP, s.PodCIDR, s.ServiceCIDR, s.Dir)
	if err := writePKI(l, s); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	if err := writeConfigs(l, s, cfg.AuditPolicy); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	helper, err := copySelf(l)
	if err != nil {
		return nil, err
	}
	if err := setupNetwork(ctx, l, s); err != nil {
		return nil, err
	}
	u := &upper{l: l, s: s, ds: daemons(l, s, helper)}
	if u.restCfg, err = clientcmd.BuildConfigFromFlags("", l.kubeconfig("admin")); err != nil {
		return nil, err
	}
	u.restCfg.QPS, u.restCfg.Burst = 50, 100
	u.restCfg.WarningHandler = rest.NoWarnings{}
	if u.kube, err = kubernetes.NewForConfig(u.restCfg); err != nil {
		return nil, err
	}
	return u, nil
}

// steps are the steps of Up, in order: the control plane, containerd and
// the images, then what runs pods.
func (u *upper) steps(archives []string) []step {
	s := u.s
	return []step{
		u.daemon("etcd", "etcd to be healthy", func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/health", s.EtcdPort))
		}),
		u.daemon("kube-apiserver", "the API server to be ready", func(ctx context.Context) error {
			return u.kube.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
		}),
		u.daemon("kube-controller-manager", "", nil),
		u.daemon("kube-scheduler", "", nil),
		u.daemon("containerd", "containerd to answer", func(ctx context.Context) error {
			return exec.CommandContext(ctx, "ctr", "--address", u.l.containerdSock(), "version").Run()
		}),
		{
			name:  "images",
			doing: fmt.Sprintf("importing %d image archive(s) into the node's containerd", 1+len(archives)),
			start: func(ctx context.Context) (*started, error) { return nil, u.importImages(ctx, archives) },
		},
		u.daemon("coredns", "CoreDNS to be ready", func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/ready", corednsReadyPort))
		}),
		u.daemon("kubelet", "node "+s.NodeName+" to be Ready", func(ctx context.Context) error {
			return nodeReady(ctx, u.kube, s.NodeName)
		}),
		u.daemon("kube-proxy", "kube-proxy to be healthy", func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/healthz", proxyHealthzPort))
		}),
		u.daemon("kube-router", "kube-router's NetworkPolicy firewall to be healthy", func(ctx context.Context) error {
			return httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/healthz", kubeRouterHealthPort))
		}),
		{
			name:  "StorageClass",
			doing: "creating StorageClass " + StorageClass,
			start: func(ctx context.Context) (*started, error) { return nil, u.createStorageClass(ctx) },
		},
		u.daemon("provisioner", "", nil),
		// Pods need the namespace's default ServiceAccount, which the
		// controller manager creates: wait for it, so that the first pods
		// a caller creates are not refused.
		{
			name:    "ServiceAccount",
			waitFor: "the controller manager to create ServiceAccount default/default",
			ready: func(ctx context.Context) error {
				_, err := u.kube.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
				return err
			},
		},
	}
}

// daemon is the step that starts the daemon name and, when ready is not
// nil, waits until ready says it works.
func (u *upper) daemon(name, waitFor string, ready func(context.Context) error) step {
	return step{
		name:  name,
		doing: "starting " + name,
		start: func(context.Context) (*started, error) {
			d, ok := u.ds[name]
			if !ok {
				return nil, fmt.Errorf("no daemon %s", name)
			}
			return start(u.l, d)
		},
		waitFor: waitFor,
		ready:   ready,
	}
}

// importImages builds the pause image and imports it and archives into
// the node's containerd.
func (u *upper) importImages(ctx context.Context, archives []string) error {
	pause, err := writePauseImage(ctx, u.l, u.s)
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	return importImages(ctx, u.l, append([]string{pause}, archives...)...)
}

func (u *upper) createStorageClass(ctx context.Context) error {
	_, err := u.kube.StorageV1().StorageClasses().Create(ctx, storageClass(), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create StorageClass %s: %w", StorageClass, err)
	}
	return nil
}

func httpOK(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// nodeReady returns nil when the node's Ready condition is true, and else
// says why not.
func nodeReady(ctx context.Context, kube kubernetes.Interface, name string) error {
	n, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s not ready: %s: %s", name, c.Reason, c.Message)
		}
	}
	return fmt.Errorf("node %s has no Ready condition yet", name)
}

// copySelf copies this program into the lab folder, to be started as the
// lab's helper processes: they must outlive this process, and the program
// may be a temporary file (go run, go test).
func copySelf(l layout) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program: %w", err)
	}
	in, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer in.Close()
	dst := filepath.Join(l.bin(), "hostlab-helper")
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", fmt.Errorf("copy %s: %w", self, err)
	}
	return dst, out.Close()
}

// Load returns the lab running in cfg.Dir, after checking that its API
// server answers and its node is Ready.
func Load(ctx context.Context, cfg Config) (*Cluster, error) {
	dir := cfg.Dir
	if dir == "" {
		dir = DefaultDir
	}
	s, ok, err := loadSettings(dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no lab in %s (start one with: hostlab up)", dir)
	}
	l := s.layout()
	restCfg, err := clientcmd.BuildConfigFromFlags("", l.kubeconfig("admin"))
	if err != nil {
		return nil, fmt.Errorf("lab in %s: %w", dir, err)
	}
	restCfg.WarningHandler = rest.NoWarnings{}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nodeReady(cctx, kube, s.NodeName); err != nil {
		return nil, fmt.Errorf("lab in %s is not healthy: %w", dir, err)
	}
	return newCluster(s, restCfg, kube), nil
}

// Processes reports, for each daemon of the lab, whether it runs.
func (c *Cluster) Processes() map[string]bool {
	return processes(c.settings.layout())
}

func processes(l layout) map[string]bool {
	out := map[string]bool{}
	for _, name := range recordedNames(l) {
		r, err := readPid(l.pidFile(name))
		out[name] = err == nil && r.alive()
	}
	return out
}

// LogFile is the log of one of the lab's processes (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd, coredns, kubelet,
// kube-proxy, kube-router, provisioner).
func (c *Cluster) LogFile(name string) string { return c.settings.layout().log(name) }
