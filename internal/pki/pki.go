// Package pki makes the small certificate authorities this project needs:
// a CA and one server certificate signed by it (ECDSA P-256), as PEM, and
// checks that a kept certificate still fits.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Lifetimes of what NewServer makes.
const (
	CALifetime     = 10 * 365 * 24 * time.Hour
	ServerLifetime = 3 * 365 * 24 * time.Hour
	// RenewBefore is how long before it expires a certificate no longer
	// fits (CheckServer).
	RenewBefore = 30 * 24 * time.Hour
)

// Bundle is a CA certificate and a server certificate with its key, PEM
// encoded, as a Kubernetes TLS Secret holds them (ca.crt, tls.crt, tls.key).
type Bundle struct {
	CACert, Cert, Key []byte
}

// NewServer makes a new CA named caName and a server certificate it signs
// for names (DNS names or IP addresses), valid from now.
func NewServer(caName string, names []string, now time.Time) (*Bundle, error) {
	if len(names) == 0 {
		return nil, errors.New("a server certificate needs at least one name")
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: caName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(ServerLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign server certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Bundle{
		CACert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// serial is a random 128-bit serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		// crypto/rand does not fail on the systems Go supports.
		panic(err)
	}
	return n
}

// CheckServer tells whether b still serves names: its certificate chains
// to its CA, matches its key, covers every name and does not expire
// within RenewBefore of now. The error says what does not fit; it never
// quotes the key.
func CheckServer(b *Bundle, names []string, now time.Time) error {
	pair, err := tlsPair(b)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b.CACert) {
		return errors.New("ca.crt holds no PEM certificate")
	}
	for _, n := range names {
		if _, err := pair.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("the certificate does not serve %s: %w", n, err)
		}
	}
	if pair.NotAfter.Before(now.Add(RenewBefore)) {
		return fmt.Errorf("the certificate expires on %s", pair.NotAfter.UTC().Format(time.DateOnly))
	}
	return nil
}
