package main

import (
	"context"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
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
		{[]string{"up", "--bogus"}, "", "unknown flag: --bogus"},
		{[]string{"up", "-h"}, "--lab-images", ""},
	} {
		streams, _, out, _ := genericiooptions.NewTestIOStreams()
		err := Run(context.Background(), tt.args, streams, func(string) string { return "" })
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("hostlab %v: error %v, want %q", tt.args, err, tt.wantErr)
		}
		if !strings.Contains(out.String(), tt.wantOut) {
			t.Errorf("hostlab %v: output %q, want it to contain %q", tt.args, out.String(), tt.wantOut)
		}
	}
}
