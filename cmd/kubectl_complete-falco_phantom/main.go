// Command kubectl_complete-falco_phantom answers kubectl's shell completion
// requests for the plugin: kubectl runs it with the words typed so far, and
// it asks the plugin (next to it, or on the PATH) through cobra's hidden
// __complete command. It is kept tiny on purpose.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

const plugin = "kubectl-falco_phantom"

func main() {
	bin := plugin
	if self, err := os.Executable(); err == nil {
		if next := filepath.Join(filepath.Dir(self), plugin); isFile(next) {
			bin = next
		}
	}
	cmd := exec.Command(bin, append([]string{"__complete"}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "kubectl_complete-falco_phantom:", err)
		os.Exit(1)
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
