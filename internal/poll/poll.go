// Package poll waits for a condition to hold, the one way this project
// waits for something it cannot be told about.
package poll

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTimeout is wrapped by the error Until returns when time ran out
// before check ever returned nil without an error of its own.
var ErrTimeout = errors.New("timed out")

// Until calls check at once and then every interval until it returns nil,
// ctx ends, or timeout passes (0: no timeout of its own). It returns nil,
// or check's last error wrapped with how long it waited, or ctx's error
// when ctx ended first and check never failed.
func Until(ctx context.Context, timeout, interval time.Duration, check func(ctx context.Context) error) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w after %s: %w", ErrTimeout, time.Since(start).Round(time.Millisecond), err)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
