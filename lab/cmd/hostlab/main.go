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
	"os"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/lab/hostlab"
)

func main() {
	// The lab re-executes this program as its helper processes (the
	// storage provisioner): that is not a command line.
	if hostlab.IsHelper() {
		os.Exit(hostlab.RunHelper(os.Args[1:]))
	}
	cmdmain.Main(Run)
}
