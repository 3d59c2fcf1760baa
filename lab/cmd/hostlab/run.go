package main

import (
	"context"
	"errors"
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
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/lab/hostlab"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	falcostandin "github.com/falco-phantom/kubectl-falco-phantom/test/standin/falco"
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

// Run runs the command with args (without the program name).
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	return cmdmain.Execute(ctx, newCommand(streams, getenv), args)
}

// options are the flags every subcommand takes.
type options struct {
	cfg      hostlab.Config
	toolsDir string
}

func newCommand(streams genericiooptions.IOStreams, getenv func(string) string) *cobra.Command {
	o := &options{cfg: hostlab.Config{Log: streams.ErrOut}}
	root := &cobra.Command{
		Use:               "hostlab",
		Short:             "A real single-node Kubernetes cluster on this machine",
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	// The root's help is the list of commands above; a command's help is
	// cobra's, with its flags.
	commandHelp := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		if c != root {
			commandHelp(c, args)
			return
		}
		fmt.Fprint(c.OutOrStdout(), usage)
	})
	f := root.PersistentFlags()
	f.StringVar(&o.cfg.Dir, "dir", hostlab.DefaultDir, "lab folder: everything of the lab lives there")
	f.StringVar(&o.toolsDir, "tools", getenv("FALCO_PHANTOM_TOOLS_DIR"), "folder of the Kubernetes binaries (default: built by build/tools/build.sh) [FALCO_PHANTOM_TOOLS_DIR]")
	root.AddCommand(
		newUpCommand(o, streams),
		&cobra.Command{
			Use:   "down",
			Short: "Stop the lab and remove everything it created (also after a crash)",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return o.down(cmd.Context(), streams.Out) },
		},
		&cobra.Command{
			Use:   "status",
			Short: "Show the lab's processes and its node",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return status(cmd.Context(), o.cfg, streams.Out) },
		},
		&cobra.Command{
			Use:   "check",
			Short: "List what this machine lacks to run the lab",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return o.check(cmd.Context(), streams) },
		},
		&cobra.Command{
			Use:   "import ARCHIVE...",
			Short: "Load image archives (docker-archive tarballs) into the node's containerd",
			RunE: func(cmd *cobra.Command, archives []string) error {
				c, err := hostlab.Load(cmd.Context(), o.cfg)
				if err != nil {
					return err
				}
				return c.ImportImages(cmd.Context(), archives...)
			},
		},
	)
	return root
}

// upOptions are the flags of hostlab up.
type upOptions struct {
	images      []string
	labImages   bool
	tag         string
	auditPolicy string
}

func newUpCommand(o *options, streams genericiooptions.IOStreams) *cobra.Command {
	var u upOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the lab, after removing what a previous lab left, and print how to use it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if u.auditPolicy != "" {
				b, err := os.ReadFile(u.auditPolicy)
				if err != nil {
					return fmt.Errorf("--audit-policy: %w", err)
				}
				o.cfg.AuditPolicy = string(b)
			}
			dir, err := tools(cmd.Context(), o.toolsDir, streams.ErrOut)
			if err != nil {
				return err
			}
			o.cfg.ToolsDir = dir
			o.cfg.Images = u.images
			return up(cmd.Context(), o.cfg, u.labImages, u.tag, streams.Out, streams.ErrOut)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cfg.NodeIP, "node-ip", "", "node address (default: the first global IPv4 address)")
	f.StringArrayVar(&u.images, "image", nil, "image archive to import (repeatable)")
	f.BoolVar(&u.labImages, "lab-images", false, "build and import the pipeline's images (forwarder, mock SOAR, NATS, shell) from this checkout, and falcosidekick and Falco (or its stand-in) from ../shared/upstream")
	f.StringVar(&u.tag, "tag", "dev", "tag of the forwarder and mock SOAR images built with --lab-images")
	f.DurationVar(&o.cfg.Timeout, "timeout", 3*time.Minute, "how long to wait for each component")
	f.StringVar(&u.auditPolicy, "audit-policy", "", "audit policy file: the API server then writes DIR/logs/audit.log")
	return cmd
}

func (o *options) down(ctx context.Context, stdout io.Writer) error {
	// Down finds the tools the lab ran with in its folder; building them
	// here could take half an hour.
	cfg := o.cfg
	cfg.ToolsDir = o.toolsDir
	release, err := hostlab.Lock(ctx, cfg.Dir, lockWait, cfg.Log)
	if err != nil {
		return err
	}
	defer release()
	if err := hostlab.Down(ctx, cfg); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "hostlab: down; nothing of it is left but its logs in", filepath.Join(cfg.Dir, "logs"))
	return nil
}

func (o *options) check(ctx context.Context, streams genericiooptions.IOStreams) error {
	cfg := o.cfg
	cfg.ToolsDir, _ = tools(ctx, o.toolsDir, streams.ErrOut)
	if problems := hostlab.Check(cfg); len(problems) > 0 {
		return &hostlab.PrerequisiteError{Problems: problems}
	}
	fmt.Fprintln(streams.Out, "hostlab: this machine can run the lab")
	return nil
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
	var upstream *hostlab.Upstream
	if labImages {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		upstream, err = labUpstream(ctx, wd, stderr)
		if err != nil {
			return err
		}
		if upstream != nil && upstream.FalcoStandin && cfg.AuditPolicy == "" {
			cfg.AuditPolicy = falcostandin.AuditPolicy // what the Falco stand-in follows
		}
		archive, err := buildLabImages(ctx, wd, tag, upstream, stderr)
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
	switch {
	case labImages && upstream != nil:
		args, err := c.InstallArgs(*upstream)
		if err != nil {
			return err
		}
		what := "Falco " + images.FalcoVersion
		if upstream.FalcoStandin {
			what = "the Falco stand-in (the folder holds no Falco)"
		}
		fmt.Fprintf(stdout, `
  # the pipeline, with this checkout's images, the upstream charts, falcosidekick and %s:
  go run ./cmd/kubectl-falco_phantom install --mock-phantom --image-tag %s \
      %s
`, what, tag, shellWords(args))
	case labImages:
		fmt.Fprintf(stdout, `
  # the pipeline, with this checkout's images and the stand-in charts (no upstream folder):
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

// labUpstream is how the lab runs the upstream parts, from the folder next
// to the checkout; nil when the folder is incomplete (said on stderr).
func labUpstream(ctx context.Context, moduleDir string, stderr io.Writer) (*hostlab.Upstream, error) {
	folder := images.UpstreamOf(moduleDir)
	if missing := folder.Missing(); len(missing) > 0 {
		fmt.Fprintf(stderr, "hostlab: without the upstream charts and falcosidekick: %s\n", strings.Join(missing, "; "))
		return nil, nil
	}
	version, err := images.ModuleVersion(ctx, moduleDir, images.NATSServerModule)
	if err != nil {
		return nil, err
	}
	return &hostlab.Upstream{Folder: folder, NATSImage: images.NATSServerRef(version), FalcoStandin: !folder.HasFalco()}, nil
}

// shellWords joins install's flags for a shell, two a line.
func shellWords(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if strings.ContainsAny(a, "{},;[]* ") {
			a = "'" + a + "'"
		}
		switch {
		case i == 0:
		case i%2 == 0:
			b.WriteString(" \\\n      ")
		default:
			b.WriteString(" ")
		}
		b.WriteString(a)
	}
	return b.String()
}

// buildLabImages builds the pipeline's images into an archive in a
// temporary folder.
func buildLabImages(ctx context.Context, moduleDir, tag string, upstream *hostlab.Upstream, stderr io.Writer) (string, error) {
	o := images.LabOptions{ModuleDir: moduleDir, Tag: tag, Arch: runtime.GOARCH,
		Progress: func(format string, args ...any) { fmt.Fprintf(stderr, "hostlab: "+format+"\n", args...) }}
	if upstream != nil {
		o.Upstream, o.FalcoStandin = upstream.Folder, upstream.FalcoStandin
	}
	imgs, err := images.Lab(ctx, o)
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
