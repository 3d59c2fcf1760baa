// Command lab runs the shell-in-container flow on a kind cluster (make lab)
// and deletes it again (make lab-down). It needs a Linux machine with Docker.
//
// Variables: LAB_NAME (the cluster, default falco-phantom-lab), IMAGE_TAG
// (of this project's images, default lab), FALCO_DRIVER (default
// modern_ebpf).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/lab/kindlab"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/plugin"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

func main() { cmdmain.Main(Run) }

// Run runs the command with args (without the program name).
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	return cmdmain.Execute(ctx, newCommand(streams, getenv), args)
}

func newCommand(streams genericiooptions.IOStreams, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "lab",
		Short: "The shell-in-container flow on a kind cluster (Linux with Docker)",
		Long: `The shell-in-container flow on a kind cluster, with the real Falco and NATS
charts and the mock SOAR (a Linux machine with Docker; see docs/lab.md).

Variables: LAB_NAME (the cluster, default ` + kindlab.DefaultName + `), IMAGE_TAG (of this
project's images, default lab), FALCO_DRIVER (default modern_ebpf).`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.AddCommand(
		&cobra.Command{
			Use:   "up",
			Short: "Create (or reuse) the cluster, install everything with the mock SOAR, run test-shell",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return up(cmd.Context(), streams, getenv) },
		},
		&cobra.Command{
			Use:   "down",
			Short: "Delete the cluster",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := check(cmd.Context(), nil, streams.ErrOut); err != nil {
					return err
				}
				return kindlab.Down(labName(getenv), streams.ErrOut)
			},
		},
	)
	return root
}

func labName(getenv func(string) string) string {
	return input.Env(getenv, "LAB_NAME", kindlab.DefaultName)
}

func up(ctx context.Context, streams genericiooptions.IOStreams, getenv func(string) string) error {
	start := time.Now()
	out := streams.ErrOut
	meminfo, _ := os.Open("/proc/meminfo")
	err := check(ctx, meminfo, out)
	if meminfo != nil {
		meminfo.Close()
	}
	if err != nil {
		return err
	}
	name := labName(getenv)
	kubeconfig, err := kubeconfigFile(getenv, name)
	if err != nil {
		return err
	}
	lab, err := kindlab.Up(ctx, name, kubeconfig, out)
	if err != nil {
		return err
	}
	tag := input.Env(getenv, "IMAGE_TAG", "lab")
	fmt.Fprintf(out, "• building this project's images (tag %s) without Docker\n", tag)
	imgs, err := images.Project(ctx, ".", images.DefaultRegistry, tag, runtime.GOARCH)
	if err != nil {
		return err
	}
	if err := lab.LoadImages(imgs, out); err != nil {
		return err
	}
	fmt.Fprintln(out, "• installing the pipeline with the upstream Falco and NATS charts")
	err = plugin.Run(ctx, []string{"install", "--kubeconfig", kubeconfig, "--mock-phantom", "--image-tag", tag,
		"--falco-driver", input.Env(getenv, "FALCO_DRIVER", "modern_ebpf"), "--timeout", "10m"}, streams, getenv)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "• opening a shell in a container and waiting for its case in the mock SOAR")
	testErr := plugin.Run(ctx, []string{"test-shell", "--kubeconfig", kubeconfig, "--timeout", "2m"}, streams, getenv)
	printHowTo(streams.Out, time.Since(start), kubeconfig)
	return testErr
}

// check reports the prerequisites the machine lacks (with meminfo, enough
// free memory too) and fails when there are any.
func check(ctx context.Context, meminfo io.Reader, w io.Writer) error {
	problems := kindlab.Check(ctx, runtime.GOOS, meminfo, nil)
	for _, p := range problems {
		fmt.Fprintf(w, "✗ %s\n  fix: %s\n", p.What, p.Fix)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d prerequisite(s) missing for the kind lab", len(problems))
	}
	return nil
}

// kubeconfigFile is the lab's own kubeconfig, in this user's cache folder
// (the user's kubeconfig is not touched).
func kubeconfigFile(getenv func(string) string, name string) (string, error) {
	cache, err := cacheDir(getenv)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "falco-phantom", "lab")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return filepath.Join(dir, name+".kubeconfig"), nil
}

// cacheDir is os.UserCacheDir on Linux, the only system the lab runs on,
// with the variables read through getenv.
func cacheDir(getenv func(string) string) (string, error) {
	if dir := getenv("XDG_CACHE_HOME"); filepath.IsAbs(dir) {
		return dir, nil
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".cache"), nil
	}
	return "", errors.New("neither $XDG_CACHE_HOME nor $HOME is defined")
}

func printHowTo(w io.Writer, took time.Duration, kubeconfig string) {
	ns := install.DefaultNamespace
	fmt.Fprintf(w, `
The lab is up (%s). Look at the cases in the mock SOAR:

  export KUBECONFIG=%s
  kubectl -n %s port-forward svc/%s 8080
  open http://127.0.0.1:8080/   user admin, password:
  kubectl -n %s get secret %s -o jsonpath='{.data.password}' | base64 -d

Open a shell yourself (the alert shows up as a new artifact):
  make build && export PATH=$PWD/bin:$PATH    # puts the plugin on your PATH
  kubectl falco-phantom test-shell --interactive
Delete the lab:  make lab-down
`, took.Round(time.Second), kubeconfig, ns, install.ReleaseMock, ns, install.SecretMock)
}
