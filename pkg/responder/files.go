package responder

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
)

// stamp tells whether a file changed: a mounted Secret is replaced by
// swapping a link, which gives the file a new time.
type stamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.ModTime(), fi.Size()}, nil
}

// tokenFile is the bearer token, read again whenever its file changes, so
// that a rotated Secret takes effect without a restart.
type tokenFile struct {
	path string

	mu    sync.Mutex
	seen  stamp
	token string
	err   error
}

// get returns the token. Errors name the file, never its content.
func (f *tokenFile) get() (string, error) {
	st, err := stampOf(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.seen, f.token, f.err = stamp{}, "", fmt.Errorf("token file: %w", err)
		return "", f.err
	}
	if st != f.seen || (f.token == "" && f.err == nil) {
		f.token, f.err = input.SecretFile(f.path)
		if f.err != nil {
			f.err = fmt.Errorf("token file: %w", f.err)
		}
		f.seen = st
	}
	return f.token, f.err
}

// keyPair is the server's certificate, read again whenever one of its
// files changes.
type keyPair struct {
	certFile, keyFile string

	mu   sync.Mutex
	seen [2]stamp
	cert *tls.Certificate
}

// get returns the certificate; while the files are being replaced (or
// broken) it keeps serving the last good one.
func (k *keyPair) get() (*tls.Certificate, error) {
	c, errC := stampOf(k.certFile)
	key, errK := stampOf(k.keyFile)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := errors.Join(errC, errK); err != nil {
		return k.keep(fmt.Errorf("TLS certificate: %w", err))
	}
	if k.cert != nil && k.seen == [2]stamp{c, key} {
		return k.cert, nil
	}
	pair, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return k.keep(fmt.Errorf("TLS certificate %s and key %s: %w", k.certFile, k.keyFile, err))
	}
	k.cert, k.seen = &pair, [2]stamp{c, key}
	return k.cert, nil
}

func (k *keyPair) keep(err error) (*tls.Certificate, error) {
	if k.cert != nil {
		return k.cert, nil
	}
	return nil, err
}
