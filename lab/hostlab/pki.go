package hostlab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// certValidity is long enough for any lab, short enough to be obviously
// a lab's.
const certValidity = 365 * 24 * time.Hour

// keyPair is a certificate with its private key.
type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
	der  []byte
}

// certRequest describes one certificate signed by the lab's CA.
type certRequest struct {
	file   string // base name: file.crt and file.key
	cn     string
	orgs   []string
	ips    []net.IP
	dns    []string
	server bool
	client bool
}

// newCA creates the lab's certificate authority.
func newCA() (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "falco-phantom-hostlab-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key, der: der}, nil
}

// sign issues a certificate for req.
func (ca *keyPair) sign(req certRequest) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: req.cn, Organization: req.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		IPAddresses:  req.ips,
		DNSNames:     req.dns,
	}
	if req.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if req.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", req.cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key, der: der}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func (kp *keyPair) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.der})
}

func (kp *keyPair) keyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(kp.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// write stores the pair as base.crt and base.key.
func (kp *keyPair) write(l layout, base string) error {
	keyPEM, err := kp.keyPEM()
	if err != nil {
		return err
	}
	if err := os.WriteFile(l.pki(base+".crt"), kp.certPEM(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(l.pki(base+".key"), keyPEM, 0o600)
}

// pkiFor lists the certificates of a lab.
func pkiFor(s settings) []certRequest {
	nodeIP := net.ParseIP(s.NodeIP)
	return []certRequest{
		{
			file: "apiserver", cn: "kube-apiserver", server: true,
			ips: []net.IP{net.IPv4(127, 0, 0, 1), nodeIP, s.apiServiceIP()},
			dns: []string{"localhost", s.NodeName, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc." + clusterDomain},
		},
		{file: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, client: true},
		{file: "admin", cn: "hostlab-admin", orgs: []string{"system:masters"}, client: true},
		{file: "kubelet-client", cn: "system:node:" + s.NodeName, orgs: []string{"system:nodes"}, client: true},
		{file: "kubelet", cn: s.NodeName, server: true, ips: []net.IP{nodeIP, net.IPv4(127, 0, 0, 1)}, dns: []string{s.NodeName, "localhost"}},
	}
}

// writePKI creates the CA, every certificate, the service-account key
// pair and the kubeconfigs of the admin and the kubelet.
func writePKI(l layout, s settings) error {
	if err := os.MkdirAll(l.pki(""), 0o700); err != nil {
		return err
	}
	ca, err := newCA()
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	if err := ca.write(l, "ca"); err != nil {
		return err
	}
	pairs := map[string]*keyPair{}
	for _, req := range pkiFor(s) {
		kp, err := ca.sign(req)
		if err != nil {
			return err
		}
		if err := kp.write(l, req.file); err != nil {
			return err
		}
		pairs[req.file] = kp
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	saDER, err := x509.MarshalPKCS8PrivateKey(saKey)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(l.pki("sa.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: saDER}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(l.pki("sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return err
	}
	for name, pair := range map[string]string{"admin": "admin", "kubelet": "kubelet-client"} {
		b, err := kubeconfig(s.apiServerURL(), ca, pairs[pair], name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(l.kubeconfig(name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// kubeconfig renders a kubeconfig for one client certificate, with the
// certificates embedded so that the file can be copied anywhere.
func kubeconfig(server string, ca, client *keyPair, user string) ([]byte, error) {
	keyPEM, err := client.keyPEM()
	if err != nil {
		return nil, err
	}
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: %[4]s
  user:
    client-certificate-data: %[5]s
    client-key-data: %[6]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[4]s
current-context: %[1]s
`, ContextName, server, b64(ca.certPEM()), user, b64(client.certPEM()), b64(keyPEM)), nil
}
