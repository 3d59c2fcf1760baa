package hostlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Lock takes the lab folder's lock (a file beside it), waiting up to wait
// for another holder, and returns its release. One machine runs one lab
// at a time: programs that bring a lab up, use it and tear it down (the
// end-to-end suite, the hostlab command) hold the lock meanwhile, so that
// two of them never share one. Up and Down do not take it themselves.
func Lock(ctx context.Context, dir string, wait time.Duration, w io.Writer) (release func(), err error) {
	if dir == "" {
		dir = DefaultDir
	}
	file := filepath.Clean(dir) + ".lock"
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", file, err)
	}
	deadline := time.Now().Add(wait)
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", file, err)
		}
		if !told {
			logf(w, "hostlab: another program uses the lab in %s; waiting up to %s for it (lock %s)", dir, wait, file)
			told = true
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("the lab in %s is still in use after %s (lock %s held by another program)", dir, wait, file)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
