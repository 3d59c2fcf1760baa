package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"
)

func TestNewServerIsServedAndChecked(t *testing.T) {
	t.Parallel()
	now := time.Now()
	names := []string{"svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local"}
	b, err := NewServer("test CA", names, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckServer(b, names, now); err != nil {
		t.Fatalf("fresh bundle: %v", err)
	}
	block, _ := pem.Decode(b.Cert)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("server key %T, want ECDSA P-256", cert.PublicKey)
	}

	// A real TLS handshake trusts the CA for each name.
	pair, err := tls.X509KeyPair(b.Cert, b.Key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b.CACert)
	for _, n := range []string{"svc.ns.svc", "other"} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: n, MinVersion: tls.VersionTLS12})
		if (err == nil) != (n != "other") {
			t.Errorf("handshake as %s: %v", n, err)
		}
		if c != nil {
			c.Close()
		}
	}

	for _, c := range []struct {
		name  string
		b     *Bundle
		names []string
		now   time.Time
		says  string
	}{
		{"another name", b, []string{"svc.other.svc"}, now, "does not serve svc.other.svc"},
		{"near its end", b, names, now.Add(ServerLifetime - RenewBefore/2), "expires on"},
		{"another CA", &Bundle{CACert: mustNew(t).CACert, Cert: b.Cert, Key: b.Key}, names, now, "does not serve"},
		{"another key", &Bundle{CACert: b.CACert, Cert: b.Cert, Key: mustNew(t).Key}, names, now, "not a certificate and its key"},
		{"no CA", &Bundle{Cert: b.Cert, Key: b.Key}, names, now, "ca.crt holds no PEM"},
	} {
		err := CheckServer(c.b, c.names, c.now)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %q", c.name, err, c.says)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY-----\n") {
			t.Errorf("%s: the error quotes the key", c.name)
		}
	}
}

func TestIPNames(t *testing.T) {
	t.Parallel()
	b, err := NewServer("ca", []string{"127.0.0.1", "localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b.Cert)
	cert, _ := x509.ParseCertificate(block.Bytes)
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || len(cert.DNSNames) != 1 {
		t.Errorf("IPs %v DNS %v", cert.IPAddresses, cert.DNSNames)
	}
	if _, err := NewServer("ca", nil, time.Now()); err == nil {
		t.Error("a certificate without names was made")
	}
}

func mustNew(t *testing.T) *Bundle {
	t.Helper()
	b, err := NewServer("other", []string{"svc"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}
