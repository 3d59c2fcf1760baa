package cmdmain

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/version"
)

// Execute runs the cobra command tree cmd with args until ctx ends: the
// body of a cobra command's Run.
func Execute(ctx context.Context, cmd *cobra.Command, args []string) error {
	if args == nil {
		args = []string{} // cobra would read os.Args instead
	}
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}

// Command is the one shape of a command: Complete fills its options from
// the flags and arguments, Validate checks them, Run does the work.
type Command interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// RunE runs c as a cobra command.
func RunE(c Command) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := c.Complete(cmd, args); err != nil {
			return err
		}
		if err := c.Validate(); err != nil {
			return err
		}
		return c.Run(cmd.Context())
	}
}

// SetVersion gives cmd a --version flag that prints "name version (go,
// platform)", the same line as every binary's version command.
func SetVersion(cmd *cobra.Command, name string) {
	v := version.Get()
	cmd.Version = v.Version
	cmd.SetVersionTemplate(VersionLine(name) + "\n")
}

// VersionLine is "name version (go, platform)".
func VersionLine(name string) string {
	v := version.Get()
	return fmt.Sprintf("%s %s (%s, %s)", name, v.Version, v.GoVersion, v.Platform)
}
