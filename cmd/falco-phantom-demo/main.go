// Command falco-phantom-demo runs the whole pipeline on this machine, with
// no cluster: the same as "kubectl falco-phantom demo", in a binary that
// links only what the demo needs, so that a first `make demo` builds in
// minutes.
package main

import (
	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/demo"
)

func main() { cmdmain.Main(demo.Run) }
