// Command kubectl-falco_phantom is the kubectl plugin, run as
// "kubectl falco-phantom".
package main

import (
	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/plugin"
)

func main() { cmdmain.Main(plugin.Run) }
