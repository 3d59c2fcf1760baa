// Package cmdmain is the main function of every command of this project:
// it hands the command its arguments, streams and environment, stops it on
// SIGINT and SIGTERM, and turns its error into a message and an exit code.
// Commands stay testable: tests call their Run with buffers.
package cmdmain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// RunFunc is the one shape of a command's entry point: args exclude the
// program name; getenv is os.Getenv outside tests.
type RunFunc func(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error

// ExitCoder is an error that carries the process exit code, so that
// scripts can tell failures apart.
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

// Main runs run as the process and exits with its exit code; an error is
// printed to stderr as "error: ...".
func Main(run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
	}
	os.Exit(ExitCode(err))
}
