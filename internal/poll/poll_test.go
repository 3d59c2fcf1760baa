package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	t.Parallel()
	calls := 0
	err := Until(t.Context(), time.Second, time.Millisecond, func(context.Context) error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("Until = %v after %d calls, want nil after 3", err, calls)
	}

	last := errors.New("still broken")
	err = Until(t.Context(), 20*time.Millisecond, time.Millisecond, func(context.Context) error { return last })
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, last) {
		t.Errorf("Until = %v, want a timeout wrapping the last error", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Until(ctx, time.Second, time.Millisecond, func(context.Context) error { return last }); !errors.Is(err, context.Canceled) {
		t.Errorf("Until on an ended context = %v, want context.Canceled", err)
	}
}
