// Command falco-standin stands in for Falco where it cannot run: it runs
// in the Falco container of the real Falco chart's DaemonSet, follows the
// API server's audit log and posts the alert "Terminal shell in container"
// for every exec of a shell with a terminal to falcosidekick. It is not a
// detection; see the package test/standin/falco.
package main

import (
	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	falcostandin "github.com/falco-phantom/kubectl-falco-phantom/test/standin/falco"
)

func main() { cmdmain.Main(falcostandin.Run) }
