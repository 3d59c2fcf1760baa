package cmdmain

import (
	"context"

	"github.com/spf13/cobra"
)

// Execute runs the cobra command tree cmd with args until ctx ends: the
// body of a cobra command's Run.
func Execute(ctx context.Context, cmd *cobra.Command, args []string) error {
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}
