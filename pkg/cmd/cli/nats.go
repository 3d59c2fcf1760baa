package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

// ConnectNATS connects to the NATS of the pipeline installed in namespace:
// through a port-forward to one of its pods when install installed it (as
// kubectl port-forward does, so it works from a laptop), or at the
// existing NATS the install uses, with the credentials install stored for
// the forwarder. url, when given, is used instead. close ends the
// connection and the port-forward.
func (e *Env) ConnectNATS(ctx context.Context, namespace, url string) (nc *nats.Conn, close func(), err error) {
	if url != "" {
		return connectNATS(url, nil)
	}
	c, err := e.Connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	state, err := install.ReadState(ctx, c.Kube, namespace)
	if err != nil {
		return nil, nil, err
	}
	if state == nil {
		return nil, nil, fmt.Errorf("namespace %s: %w (give --nats-url, or -n the namespace install used)", namespace, install.ErrNotInstalled)
	}
	if !state.Has(install.NATS) {
		var creds []byte
		if secretIn(state.Secrets, install.SecretNATSCreds) {
			s, err := c.Kube.CoreV1().Secrets(namespace).Get(ctx, install.SecretNATSCreds, metav1.GetOptions{})
			if err != nil {
				return nil, nil, fmt.Errorf("read the NATS credentials (Secret %s/%s): %w", namespace, install.SecretNATSCreds, err)
			}
			creds = s.Data["nats.creds"]
		}
		nc, close, err := connectNATS(state.NATSURL, creds)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (the pipeline uses an existing NATS; give --nats-url with an address reachable from here)", err)
		}
		return nc, close, nil
	}
	local, stop, err := c.forwardToNATS(ctx, namespace, e.Streams.ErrOut)
	if err != nil {
		return nil, nil, err
	}
	nc, closeNC, err := connectNATS(fmt.Sprintf("nats://127.0.0.1:%d", local), nil)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return nc, func() { closeNC(); stop() }, nil
}

func secretIn(secrets []string, name string) bool {
	for _, s := range secrets {
		if s == name {
			return true
		}
	}
	return false
}

// connectNATS connects to url, with a credentials file's content if any
// (written to a private temporary file for the client, removed on close).
func connectNATS(url string, creds []byte) (*nats.Conn, func(), error) {
	opts := []nats.Option{nats.Name("kubectl-falco-phantom")}
	cleanup := func() {}
	if len(creds) > 0 {
		dir, err := os.MkdirTemp("", "falco-phantom-nats-")
		if err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		file := filepath.Join(dir, "nats.creds")
		if err := os.WriteFile(file, creds, 0o600); err != nil {
			cleanup()
			return nil, nil, err
		}
		opts = append(opts, nats.UserCredentials(file))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		cleanup()
		return nil, nil, forwarder.ConnectError(url, err)
	}
	return nc, func() { nc.Close(); cleanup() }, nil
}

// forwardToNATS forwards a local port to the client port of a ready NATS
// pod of the namespace, and returns it.
func (c *Cluster) forwardToNATS(ctx context.Context, namespace string, errOut io.Writer) (local uint16, stop func(), err error) {
	pods, err := c.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: install.NATS.Selector() + ",app.kubernetes.io/name=nats"})
	if err != nil {
		return 0, nil, fmt.Errorf("find the NATS pods of %s: %w", namespace, err)
	}
	pod := readyPod(pods.Items)
	if pod == "" {
		return 0, nil, fmt.Errorf("no ready NATS pod in %s (see: kubectl falco-phantom status -n %s)", namespace, namespace)
	}
	req := c.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward")
	transport, upgrader, err := spdy.RoundTripperFor(c.Config)
	if err != nil {
		return 0, nil, err
	}
	spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, req.URL())
	wsDialer, err := portforward.NewSPDYOverWebsocketDialer(req.URL(), c.Config)
	if err != nil {
		return 0, nil, err
	}
	// As kubectl: WebSocket first, SPDY when the server cannot upgrade.
	dialer := portforward.NewFallbackDialer(wsDialer, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	stopCh, ready := make(chan struct{}), make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:4222"}, stopCh, ready, io.Discard, errOut)
	if err != nil {
		return 0, nil, err
	}
	failed := make(chan error, 1)
	go func() { failed <- pf.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-failed:
		if err == nil {
			err = errors.New("stopped")
		}
		return 0, nil, fmt.Errorf("port-forward to pod %s/%s: %w", namespace, pod, err)
	case <-ctx.Done():
		close(stopCh)
		return 0, nil, ctx.Err()
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		close(stopCh)
		return 0, nil, fmt.Errorf("port-forward to pod %s/%s: no local port", namespace, pod)
	}
	return ports[0].Local, func() { close(stopCh) }, nil
}

func readyPod(pods []corev1.Pod) string {
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return p.Name
			}
		}
	}
	return ""
}
