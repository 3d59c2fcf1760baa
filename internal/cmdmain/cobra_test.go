package cmdmain

import (
	"context"
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

type ctxKey struct{}

func TestExecute(t *testing.T) {
	t.Parallel()
	var gotArgs []string
	var gotValue any
	cmd := &cobra.Command{Use: "x", RunE: func(cmd *cobra.Command, args []string) error {
		gotArgs, gotValue = args, cmd.Context().Value(ctxKey{})
		return nil
	}}
	ctx := context.WithValue(t.Context(), ctxKey{}, "mine")
	if err := Execute(ctx, cmd, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotArgs, []string{"a", "b"}) || gotValue != "mine" {
		t.Errorf("RunE saw args %v and context value %v, want [a b] and mine", gotArgs, gotValue)
	}
}
