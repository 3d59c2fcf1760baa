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

	settings settings
}

// Up brings up a one-node cluster. It first removes whatever a previous
// lab left in the same folder, so it also recovers from a crash. When Up
// fails, what it started keeps running for inspection (logs in
// Dir/logs); Down removes it.
func Up(ctx context.Context, cfg Config) (*Cluster, error) {
	begin := time.Now()
	s := cfg.resolve()
	if problems := check(s); len(problems) > 0 {
		return nil, &PrerequisiteError{Problems: problems}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	w := cfg.Log
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
	logf(w, "hostlab: node %s at %s, pods %s, services %s, lab folder %s", s.NodeName, s.NodeIP, s.PodCIDR, s.ServiceCIDR, s.Dir)
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
	ds := daemons(l, s, helper)
	u := &upper{l: l, s: s, w: w, timeout: timeout, ds: ds}

	etcd, err := u.start("etcd")
	if err != nil {
		return nil, err
	}
	if err := u.wait(ctx, etcd, "etcd to be healthy", func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/health", s.EtcdPort))
	}); err != nil {
		return nil, err
	}
	api, err := u.start("kube-apiserver")
	if err != nil {
		return nil, err
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", l.kubeconfig("admin"))
	if err != nil {
		return nil, err
	}
	restCfg.QPS, restCfg.Burst = 50, 100
	restCfg.WarningHandler = rest.NoWarnings{}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	if err := u.wait(ctx, api, "the API server to be ready", func(ctx context.Context) error {
		return kube.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	}); err != nil {
		return nil, err
	}
	for _, name := range []string{"kube-controller-manager", "kube-scheduler"} {
		if _, err := u.start(name); err != nil {
			return nil, err
		}
	}
	ctrd, err := u.start("containerd")
	if err != nil {
		return nil, err
	}
	if err := u.wait(ctx, ctrd, "containerd to answer", func(ctx context.Context) error {
		return exec.CommandContext(ctx, "ctr", "--address", l.containerdSock(), "version").Run()
	}); err != nil {
		return nil, err
	}
	pause, err := writePauseImage(ctx, l, s)
	if err != nil {
		return nil, fmt.Errorf("pause image: %w", err)
	}
	logf(w, "hostlab: importing %d image archive(s) into the node's containerd", 1+len(cfg.Images))
	if err := importImages(ctx, l, append([]string{pause}, cfg.Images...)...); err != nil {
		return nil, err
	}
	dns, err := u.start("coredns")
	if err != nil {
		return nil, err
	}
	if err := u.wait(ctx, dns, "CoreDNS to be ready", func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/ready", corednsReadyPort))
	}); err != nil {
		return nil, err
	}
	kubelet, err := u.start("kubelet")
	if err != nil {
		return nil, err
	}
	if err := u.wait(ctx, kubelet, "node "+s.NodeName+" to be Ready", func(ctx context.Context) error {
		return nodeReady(ctx, kube, s.NodeName)
	}); err != nil {
		return nil, err
	}
	proxy, err := u.start("kube-proxy")
	if err != nil {
		return nil, err
	}
	if err := u.wait(ctx, proxy, "kube-proxy to be healthy", func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/healthz", proxyHealthzPort))
	}); err != nil {
		return nil, err
	}
	if _, err := kube.StorageV1().StorageClasses().Create(ctx, storageClass(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create StorageClass %s: %w", StorageClass, err)
	}
	if _, err := u.start("provisioner"); err != nil {
		return nil, err
	}
	// Pods need the namespace's default ServiceAccount, which the
	// controller manager creates: wait for it, so that the first pods a
	// caller creates are not refused.
	if err := u.wait(ctx, nil, "the controller manager to create ServiceAccount default/default", func(ctx context.Context) error {
		_, err := kube.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	logf(w, "hostlab: cluster up in %s; kubeconfig %s", time.Since(begin).Round(100*time.Millisecond), l.kubeconfig("admin"))
	return newCluster(s, restCfg, kube), nil
}

func newCluster(s settings, cfg *rest.Config, kube kubernetes.Interface) *Cluster {
	l := s.layout()
	c := &Cluster{
		Dir: s.Dir, Kubeconfig: l.kubeconfig("admin"), Config: cfg, Kube: kube,
		NodeName: s.NodeName, NodeIP: s.NodeIP, DNSIP: s.gatewayIP().String(), settings: s,
	}
	if s.Audit {
		c.AuditLog = l.auditLog()
	}
	return c
}

// upper starts the lab's daemons and waits for them.
type upper struct {
	l       layout
	s       settings
	w       io.Writer
	timeout time.Duration
	ds      map[string]daemon
}

func (u *upper) start(name string) (*started, error) {
	d, ok := u.ds[name]
	if !ok {
		return nil, fmt.Errorf("no daemon %s", name)
	}
	logf(u.w, "hostlab: starting %s", name)
	return start(u.l, d)
}

// wait polls check until it succeeds. It fails at once when the daemon
// proc exits, with the end of its log, and after the timeout with check's
// last error.
func (u *upper) wait(ctx context.Context, proc *started, what string, check func(context.Context) error) error {
	begin := time.Now()
	deadline := begin.Add(u.timeout)
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			logf(u.w, "hostlab:   ok after %s: %s", time.Since(begin).Round(10*time.Millisecond), what)
			return nil
		}
		if proc != nil {
			select {
			case <-proc.exited:
				return fmt.Errorf("%s exited (%v) while waiting for %s; end of %s:\n%s",
					proc.name, proc.err, what, u.l.log(proc.name), logTail(u.l, proc.name, 25))
			default:
			}
		}
		if time.Now().After(deadline) {
			err := fmt.Errorf("timed out after %s waiting for %s: %v", u.timeout, what, last)
			if proc != nil {
				err = fmt.Errorf("%w; end of %s:\n%s", err, u.l.log(proc.name), logTail(u.l, proc.name, 25))
			}
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
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
// kube-proxy, provisioner).
func (c *Cluster) LogFile(name string) string { return c.settings.layout().log(name) }
