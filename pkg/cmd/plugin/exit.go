package plugin

import "errors"

// ExitCoder is an error that carries the process exit code, so that
// scripts can tell failures apart (see test-shell and status).
type ExitCoder interface {
	error
	ExitCode() int
}

// ExitCode returns the exit code for err: 0 for none, its own when it has
// one, else 1.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}
