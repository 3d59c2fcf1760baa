// Package output prints command results as a table for people, or as JSON
// or YAML for scripts (-o).
package output

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Format is an output format.
type Format string

const (
	// Table is for people; the default.
	Table Format = "table"
	// JSON is indented JSON.
	JSON Format = "json"
	// YAML is YAML.
	YAML Format = "yaml"
)

// AddFlag registers -o/--output on cmd.
func AddFlag(cmd *cobra.Command, f *Format) {
	*f = Table
	cmd.Flags().StringVarP((*string)(f), "output", "o", string(Table), "output format: table, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{string(Table), string(JSON), string(YAML)}, cobra.ShellCompDirectiveNoFileComp
	})
}

// Validate checks the format.
func (f Format) Validate() error {
	switch f {
	case Table, JSON, YAML:
		return nil
	}
	return fmt.Errorf("--output %q: want table, json or yaml", string(f))
}

// Print writes v in the format; table is called for Table.
func Print(w io.Writer, f Format, v any, table func(io.Writer) error) error {
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case YAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	default:
		return table(w)
	}
}
