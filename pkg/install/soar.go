package install

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// SOARClient is a client of the SOAR that install configured in namespace,
// and its URL for people: the mock through the API server's service proxy (it runs
// inside the cluster), or the real SOAR at its URL with the credentials of
// the forwarder's Secret.
func SOARClient(ctx context.Context, kube kubernetes.Interface, cfg *rest.Config, namespace string) (string, *phantom.Client, error) {
	state, err := ReadState(ctx, kube, namespace)
	if err != nil {
		return "", nil, err
	}
	if state == nil {
		return "", nil, fmt.Errorf("no install found in namespace %s: give --phantom-url and credentials, or -n/--install-namespace", namespace)
	}
	if state.Mock {
		sec, err := kube.CoreV1().Secrets(namespace).Get(ctx, SecretMock, metav1.GetOptions{})
		if err != nil {
			return "", nil, fmt.Errorf("read the mock SOAR's credentials (Secret %s/%s): %w", namespace, SecretMock, err)
		}
		transport, err := rest.TransportFor(cfg)
		if err != nil {
			return "", nil, err
		}
		host := strings.TrimRight(cfg.Host, "/")
		if !strings.Contains(host, "://") {
			host = "https://" + host
		}
		base := fmt.Sprintf("%s/api/v1/namespaces/%s/services/http:%s:%d/proxy", host, namespace, ReleaseMock, MockPhantomPort)
		client, err := phantom.New(phantom.Config{
			BaseURL: base, Credentials: phantom.StaticCredentials{Token: string(sec.Data["token"])}, Transport: transport, Timeout: 15 * time.Second,
		})
		if err != nil {
			return "", nil, err
		}
		return state.PhantomURL + " (through the API server)", client, nil
	}
	secret := state.CredentialsSecret
	if secret == "" {
		secret = SecretSOAR
	}
	sec, err := kube.CoreV1().Secrets(namespace).Get(ctx, secret, metav1.GetOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("read the SOAR credentials (Secret %s/%s): %w", namespace, secret, err)
	}
	auth := phantom.Auth{User: string(sec.Data["user"]), Password: string(sec.Data["password"]), Token: string(sec.Data["token"])}
	var ca []byte
	if state.CASecret != "" {
		caSec, err := kube.CoreV1().Secrets(namespace).Get(ctx, state.CASecret, metav1.GetOptions{})
		if err != nil {
			return "", nil, fmt.Errorf("read SOAR's CA (Secret %s/%s): %w", namespace, state.CASecret, err)
		}
		ca = caSec.Data["ca.crt"]
	}
	client, err := phantom.New(phantom.Config{
		BaseURL: state.PhantomURL, Credentials: phantom.StaticCredentials(auth), InsecureSkipVerify: state.InsecureSkipTLSVerify,
		CAPEM: ca, Timeout: 15 * time.Second,
	})
	if err != nil {
		return "", nil, err
	}
	return state.PhantomURL, client, nil
}
