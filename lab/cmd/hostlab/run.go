package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/lab/hostlab"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
)

const usage = `usage: hostlab COMMAND [flags]

A real single-node Kubernetes cluster on this machine (root; see docs/development.md).

  up       start it, after removing what a previous lab left, and print how to use it
  down     stop it and remove everything it created (also after a crash)
  status   show its processes and its node
  check    list what this machine lacks to run it
  import   load image archives (docker-archive tarballs) into the node's containerd

Run "hostlab COMMAND -h" for the flags of a command.
`

// lockWait is how long a command waits for another program using the lab.
const lockWait = 20 * time.Minute

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("hostlab "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := hostlab.Config{Log: stderr}
	fs.StringVar(&cfg.Dir, "dir", hostlab.DefaultDir, "lab folder: everything of the lab lives there")
	toolsDir := fs.String("tools", getenv("FALCO_PHANTOM_TOOLS_DIR"), "folder of the Kubernetes binaries (default: built by build/tools/build.sh) [FALCO_PHANTOM_TOOLS_DIR]")
	switch cmd {
	case "up":
		fs.StringVar(&cfg.NodeIP, "node-ip", "", "node address (default: the first global IPv4 address)")
		imageArchives := stringList{}
		fs.Var(&imageArchives, "image", "image archive to import (repeatable)")
		labImages := fs.Bool("lab-images", false, "build and import the pipeline's images (forwarder, mock SOAR, NATS, falcosidekick stand-in, shell) from this checkout")
		tag := fs.String("tag", "dev", "tag of the forwarder and mock SOAR images built with --lab-images")
		fs.DurationVar(&cfg.Timeout, "timeout", 3*time.Minute, "how long to wait for each component")
		auditPolicy := fs.String("audit-policy", "", "audit policy file: the API server then writes DIR/logs/audit.log")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *auditPolicy != "" {
			b, err := os.ReadFile(*auditPolicy)
			if err != nil {
				return fmt.Errorf("--audit-policy: %w", err)
			}
			cfg.AuditPolicy = string(b)
		}
		dir, err := tools(ctx, *toolsDir, stderr)
		if err != nil {
			return err
		}
		cfg.ToolsDir = dir
		cfg.Images = imageArchives
		return up(ctx, cfg, *labImages, *tag, stdout, stderr)
	case "down":
		if err := fs.Parse(args); err != nil {
			return err
		}
		// Down finds the tools the lab ran with in its folder; building
		// them here could take half an hour.
		cfg.ToolsDir = *toolsDir
		release, err := hostlab.Lock(ctx, cfg.Dir, lockWait, stderr)
		if err != nil {
			return err
		}
		defer release()
		if err := hostlab.Down(ctx, cfg); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "hostlab: down; nothing of it is left but its logs in", filepath.Join(cfg.Dir, "logs"))
		return nil
	case "status":
		if err := fs.Parse(args); err != nil {
			return err
		}
		return status(ctx, cfg, stdout)
	case "check":
		if err := fs.Parse(args); err != nil {
			return err
		}
		cfg.ToolsDir, _ = tools(ctx, *toolsDir, stderr)
		problems := hostlab.Check(cfg)
		if len(problems) > 0 {
			return &hostlab.PrerequisiteError{Problems: problems}
		}
		fmt.Fprintln(stdout, "hostlab: this machine can run the lab")
		return nil
	case "import":
		if err := fs.Parse(args); err != nil {
			return err
		}
		c, err := hostlab.Load(ctx, cfg)
		if err != nil {
			return err
		}
		return c.ImportImages(ctx, fs.Args()...)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func up(ctx context.Context, cfg hostlab.Config, labImages bool, tag string, stdout, stderr io.Writer) error {
	release, err := hostlab.Lock(ctx, cfg.Dir, lockWait, stderr)
	if err != nil {
		return err
	}
	defer release()
	if problems := hostlab.Check(cfg); len(problems) > 0 {
		return &hostlab.PrerequisiteError{Problems: problems}
	}
	if labImages {
		archive, err := buildLabImages(ctx, tag, stderr)
		if err != nil {
			return err
		}
		defer os.RemoveAll(filepath.Dir(archive))
		cfg.Images = append(cfg.Images, archive)
	}
	c, err := hostlab.Up(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w\n(logs in %s; remove what was started with: hostlab down)", err, filepath.Join(cfg.Dir, "logs"))
	}
	fmt.Fprintf(stdout, `hostlab is up: node %s (%s), lab folder %s

  export KUBECONFIG=%s
  %s get nodes
`, c.NodeName, c.NodeIP, c.Dir, c.Kubeconfig, filepath.Join(cfg.ToolsDir, "kubectl"))
	if labImages {
		fmt.Fprintf(stdout, `
  # the pipeline, with this checkout's images and the stand-in charts:
  go run ./cmd/kubectl-falco_phantom install --mock-phantom --image-tag %s \
      --nats-chart test/standin/charts/nats --falco-chart test/standin/charts/falco
`, tag)
	}
	fmt.Fprintf(stdout, `
Pods and Services are reachable from this machine (ClusterIPs are routed by kube-proxy).
Images: only imported ones run (hostlab import ARCHIVE; make images writes bin/images.tar).
Stop it with: make hostlab-down
`)
	return nil
}

// buildLabImages builds the pipeline's images into an archive in a
// temporary folder.
func buildLabImages(ctx context.Context, tag string, stderr io.Writer) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	imgs, err := images.Lab(ctx, images.LabOptions{ModuleDir: wd, Tag: tag, Arch: runtime.GOARCH,
		Progress: func(format string, args ...any) { fmt.Fprintf(stderr, "hostlab: "+format+"\n", args...) }})
	if err != nil {
		return "", fmt.Errorf("build the lab's images (run hostlab from the checkout's root): %w", err)
	}
	tmp, err := os.MkdirTemp("", "hostlab-images-")
	if err != nil {
		return "", err
	}
	archive := filepath.Join(tmp, "images.tar")
	if err := images.WriteArchive(archive, map[string]v1.Image(imgs)); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	return archive, nil
}

func status(ctx context.Context, cfg hostlab.Config, stdout io.Writer) error {
	c, err := hostlab.Load(ctx, cfg)
	if c == nil {
		return err
	}
	procs := c.Processes()
	names := make([]string, 0, len(procs))
	for n := range procs {
		names = append(names, n)
	}
	sort.Strings(names)
	var down []string
	for _, n := range names {
		state := "running"
		if !procs[n] {
			state = "NOT RUNNING"
			down = append(down, n)
		}
		fmt.Fprintf(stdout, "  %-24s %s\n", n, state)
	}
	fmt.Fprintf(stdout, "node %s (%s) Ready; kubeconfig %s\n", c.NodeName, c.NodeIP, c.Kubeconfig)
	if len(down) > 0 {
		return errors.New("not running: " + strings.Join(down, ", "))
	}
	return nil
}

// tools returns the folder of the Kubernetes binaries: the one given, or
// the one build/tools/build.sh builds (when run from the checkout).
func tools(ctx context.Context, dir string, stderr io.Writer) (string, error) {
	if dir != "" {
		return dir, nil
	}
	script := filepath.Join("build", "tools", "build.sh")
	if _, err := os.Stat(script); err != nil {
		return "", errors.New("no tools folder: give --tools DIR (build/tools/build.sh prints it), or run hostlab from the checkout's root")
	}
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("bash %s: %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
