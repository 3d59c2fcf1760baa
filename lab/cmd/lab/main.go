// Command lab runs the shell-in-container flow on a kind cluster (make lab)
// and deletes it again (make lab-down). It needs a Linux machine with Docker.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/lab/kindlab"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/plugin"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(cmdmain.ExitCode(err))
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) != 1 || (args[0] != "up" && args[0] != "down") {
		return fmt.Errorf("usage: lab up|down")
	}
	name := envOr("LAB_NAME", kindlab.DefaultName)
	out := os.Stderr
	if args[0] == "down" {
		if problems := kindlab.Check(ctx, runtime.GOOS, nil, nil); len(problems) > 0 {
			return report(problems)
		}
		return kindlab.Down(name, out)
	}
	start := time.Now()
	meminfo, _ := os.Open("/proc/meminfo")
	problems := kindlab.Check(ctx, runtime.GOOS, meminfo, nil)
	if meminfo != nil {
		meminfo.Close()
	}
	if len(problems) > 0 {
		return report(problems)
	}
	home, _ := os.UserCacheDir()
	dir := filepath.Join(home, "falco-phantom", "lab")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	kubeconfig := filepath.Join(dir, name+".kubeconfig")
	lab, err := kindlab.Up(ctx, name, kubeconfig, out)
	if err != nil {
		return err
	}
	tag := envOr("IMAGE_TAG", "lab")
	fmt.Fprintf(out, "• building this project's images (tag %s) without Docker\n", tag)
	imgs, err := images.Project(ctx, ".", images.DefaultRegistry, tag, runtime.GOARCH)
	if err != nil {
		return err
	}
	if err := lab.LoadImages(imgs, out); err != nil {
		return err
	}
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	fmt.Fprintln(out, "• installing the pipeline with the upstream Falco and NATS charts")
	err = plugin.Run(ctx, []string{"install", "--kubeconfig", kubeconfig, "--mock-phantom", "--image-tag", tag,
		"--falco-driver", envOr("FALCO_DRIVER", "modern_ebpf"), "--timeout", "10m"}, streams, os.Getenv)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "• opening a shell in a container and waiting for its case in the mock SOAR")
	testErr := plugin.Run(ctx, []string{"test-shell", "--kubeconfig", kubeconfig, "--timeout", "2m"}, streams, os.Getenv)
	ns := install.DefaultNamespace
	fmt.Printf(`
The lab is up (%s). Look at the cases in the mock SOAR:

  export KUBECONFIG=%s
  kubectl -n %s port-forward svc/%s 8080
  open http://127.0.0.1:8080/   user admin, password:
  kubectl -n %s get secret %s -o jsonpath='{.data.password}' | base64 -d

Open a shell yourself (the alert shows up as a new artifact):
  make build && export PATH=$PWD/bin:$PATH    # puts the plugin on your PATH
  kubectl falco-phantom test-shell --interactive
Delete the lab:  make lab-down
`, time.Since(start).Round(time.Second), kubeconfig, ns, install.ReleaseMock, ns, install.SecretMock)
	return testErr
}

func report(problems []kindlab.Problem) error {
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "✗ %s\n  fix: %s\n", p.What, p.Fix)
	}
	return fmt.Errorf("%d prerequisite(s) missing for the kind lab", len(problems))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
