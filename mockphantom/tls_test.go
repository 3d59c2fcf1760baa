package mockphantom

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
)

func TestSelfSignedTLS(t *testing.T) {
	t.Parallel()
	tlsCfg, caPEM, err := SelfSignedTLS([]string{"127.0.0.1", "localhost", " ", "[::1]"})
	if err != nil {
		t.Fatalf("SelfSignedTLS: %v", err)
	}
	s, err := New(t.Context(), Config{DBPath: filepath.Join(t.TempDir(), "db"), Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run, err := Serve(t.Context(), s, "127.0.0.1:0", tlsCfg)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	defer run.Close()
	if got, want := run.URL[:8], "https://"; got != want {
		t.Errorf("URL = %q, want an %s URL", run.URL, want)
	}

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("caPEM holds no certificate: %q", caPEM)
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer trusting.CloseIdleConnections()
	r := doRequest(t, trusting, http.MethodGet, run.URL+"/rest/version", nil, tokenHeader(testToken))
	r.wantStatus(t, http.StatusOK)

	// The same server by name.
	byName := "https://localhost:" + run.URL[len("https://127.0.0.1:"):]
	doRequest(t, trusting, http.MethodGet, byName+"/healthz", nil, noAuth).wantStatus(t, http.StatusOK)

	plain := &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	_, err = plain.Get(run.URL + "/healthz")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("client without the CA: err = %v, want x509.UnknownAuthorityError", err)
	}
}

func TestSelfSignedTLSCertificate(t *testing.T) {
	t.Parallel()
	tlsCfg, _, err := SelfSignedTLS([]string{"mock.example", "10.0.0.7"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(tlsCfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "mock.example" {
		t.Errorf("DNS names = %v, want [mock.example]", leaf.DNSNames)
	}
	if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != "10.0.0.7" {
		t.Errorf("IP addresses = %v, want [10.0.0.7]", leaf.IPAddresses)
	}
	if leaf.IsCA {
		t.Errorf("server certificate is a CA")
	}
	if _, _, err := SelfSignedTLS([]string{"", " "}); err == nil {
		t.Errorf("SelfSignedTLS without hosts succeeded, want an error")
	}
}
