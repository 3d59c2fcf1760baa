// Command kubectl_complete-falco_phantom answers kubectl's shell completion
// requests for the plugin: kubectl runs it with the words typed so far.
package main

import (
	"context"
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/plugin"
)

func main() {
	args := append([]string{"__complete"}, os.Args[1:]...)
	if err := plugin.Run(context.Background(), args, genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}); err != nil {
		os.Exit(1)
	}
}
