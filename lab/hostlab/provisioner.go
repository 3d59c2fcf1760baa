package hostlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// A lab runs its storage provisioner as a host process: a copy of the
// program that called Up, started with helperEnv set. Programs that call
// Up must therefore start with
//
//	if hostlab.IsHelper() {
//		os.Exit(hostlab.RunHelper(os.Args[1:]))
//	}
//
// (lab/cmd/hostlab's main and the end-to-end suite's TestMain do).
const (
	helperEnv         = "FALCO_PHANTOM_HOSTLAB_HELPER"
	helperProvisioner = "provisioner"
	// ProvisionerName is the StorageClass provisioner of the lab.
	ProvisionerName = "hostlab.falco-phantom.dev/hostpath"
)

// IsHelper reports whether this process was started by a lab as one of
// its helpers.
func IsHelper() bool { return os.Getenv(helperEnv) != "" }

// RunHelper runs the helper this process was started as and returns the
// exit code.
func RunHelper(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch role := os.Getenv(helperEnv); role {
	case helperProvisioner:
		err = runProvisioner(ctx, args, os.Stderr)
	default:
		err = fmt.Errorf("unknown hostlab helper %q", role)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "hostlab helper:", err)
		return 1
	}
	return 0
}

func runProvisioner(ctx context.Context, args []string, stderr io.Writer) error {
	fs := pflag.NewFlagSet("provisioner", pflag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	dir := fs.String("dir", "", "folder of the volumes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *dir == "" {
		return errors.New("--kubeconfig and --dir are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	p := &provisioner{kube: kube, dir: *dir, log: slog.New(slog.NewTextHandler(stderr, nil))}
	p.log.Info("provisioner started", "class", StorageClass, "dir", p.dir)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := p.sync(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("sync", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// provisioner gives each pending claim of the lab's StorageClass a
// hostPath volume in its own folder, and deletes volume and folder once
// the claim is gone. It polls: a lab has a handful of claims.
type provisioner struct {
	kube kubernetes.Interface
	dir  string
	log  *slog.Logger
}

func (p *provisioner) sync(ctx context.Context) error {
	claims, err := p.kube.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var errs []error
	for i := range claims.Items {
		c := &claims.Items[i]
		if c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" || c.DeletionTimestamp != nil ||
			c.Spec.StorageClassName == nil || *c.Spec.StorageClassName != StorageClass {
			continue
		}
		if err := p.provision(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("claim %s/%s: %w", c.Namespace, c.Name, err))
		}
	}
	volumes, err := p.kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for i := range volumes.Items {
		v := &volumes.Items[i]
		if v.Annotations[annProvisionedBy] != ProvisionerName || v.DeletionTimestamp != nil {
			continue
		}
		if v.Status.Phase == corev1.VolumeReleased || v.Status.Phase == corev1.VolumeFailed {
			if err := p.delete(ctx, v); err != nil {
				errs = append(errs, fmt.Errorf("volume %s: %w", v.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

const annProvisionedBy = "pv.kubernetes.io/provisioned-by"

func (p *provisioner) provision(ctx context.Context, c *corev1.PersistentVolumeClaim) error {
	name := "pvc-" + string(c.UID)
	if _, err := p.kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{}); err == nil {
		return nil // made already; the volume controller binds it
	}
	path := filepath.Join(p.dir, name)
	if err := os.MkdirAll(path, 0o777); err != nil {
		return err
	}
	// hostPath volumes ignore fsGroup: let any user of the pod write.
	if err := os.Chmod(path, 0o777); err != nil {
		return err
	}
	size := c.Spec.Resources.Requests[corev1.ResourceStorage]
	hostPathType := corev1.HostPathDirectory
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{annProvisionedBy: ProvisionerName},
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "falco-phantom-hostlab"},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   c.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              StorageClass,
			VolumeMode:                    c.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: c.Namespace, Name: c.Name, UID: c.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &hostPathType},
			},
		},
	}
	if _, err := p.kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	p.log.Info("provisioned", "claim", c.Namespace+"/"+c.Name, "volume", name, "path", path)
	return nil
}

func (p *provisioner) delete(ctx context.Context, v *corev1.PersistentVolume) error {
	if hp := v.Spec.HostPath; hp != nil && strings.HasPrefix(hp.Path, p.dir+string(filepath.Separator)) {
		if err := os.RemoveAll(hp.Path); err != nil {
			return err
		}
	}
	if err := p.kube.CoreV1().PersistentVolumes().Delete(ctx, v.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	p.log.Info("deleted", "volume", v.Name)
	return nil
}

// storageClass is the lab's default StorageClass.
func storageClass() *storagev1.StorageClass {
	reclaim := corev1.PersistentVolumeReclaimDelete
	binding := storagev1.VolumeBindingImmediate
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        StorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       ProvisionerName,
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &binding,
	}
}
