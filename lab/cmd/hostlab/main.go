// Command hostlab brings up a real single-node Kubernetes cluster on this
// machine (see lab/hostlab), and tears it down again:
//
//	hostlab up      start it (after removing what a previous lab left) and print the kubeconfig
//	hostlab down    stop it and remove everything it created
//	hostlab status  show its processes and node
//	hostlab check   list what this machine lacks to run it
//	hostlab import  load image archives into the node's containerd
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/falco-phantom/kubectl-falco-phantom/lab/hostlab"
)

func main() {
	if hostlab.IsHelper() {
		os.Exit(hostlab.RunHelper(os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostlab:", err)
		os.Exit(1)
	}
}
