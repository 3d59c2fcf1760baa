// Command mockphantom serves a mock Splunk SOAR (Phantom) REST API backed
// by SQLite; see the mockphantom package and --help.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := mockphantom.Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mockphantom:", err)
		stop()
		os.Exit(1)
	}
}
