package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct {
		args             []string
		wantOut, wantErr string
	}{
		{nil, "usage: hostlab COMMAND", ""},
		{[]string{"help"}, "down     stop it and remove everything", ""},
		{[]string{"frobnicate"}, "", `unknown command "frobnicate"`},
		{[]string{"status", "--dir", dir}, "", "no lab in " + dir},
		{[]string{"import", "--dir", dir, "images.tar"}, "", "no lab in " + dir},
		{[]string{"up", "--bogus"}, "", "flag provided but not defined"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), tt.args, &out, &errOut, func(string) string { return "" })
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("hostlab %v: error %v, want %q", tt.args, err, tt.wantErr)
		}
		if !strings.Contains(out.String(), tt.wantOut) {
			t.Errorf("hostlab %v: output %q, want it to contain %q", tt.args, out.String(), tt.wantOut)
		}
	}
}
