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

	"github.com/spf13/cobra"
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

// Command is the one shape of a command: Complete fills its options from
// the flags and arguments, Validate checks them, Run does the work.
type Command interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// RunE runs c as a cobra command.
func RunE(c Command) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := c.Complete(cmd, args); err != nil {
			return err
		}
		if err := c.Validate(); err != nil {
			return err
		}
		return c.Run(cmd.Context())
	}
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
