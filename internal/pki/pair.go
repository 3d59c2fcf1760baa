package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// tlsPair checks that b's certificate and key belong together and returns
// the parsed certificate.
func tlsPair(b *Bundle) (*x509.Certificate, error) {
	pair, err := tls.X509KeyPair(b.Cert, b.Key)
	if err != nil {
		// tls's messages name the PEM blocks, never their content.
		return nil, errors.New("tls.crt and tls.key are not a certificate and its key: " + err.Error())
	}
	return x509.ParseCertificate(pair.Certificate[0])
}
