package main

import (
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestCommands(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args             []string
		wantOut, wantErr string
	}{
		{nil, "lab [command]", ""},
		{[]string{"--help"}, "LAB_NAME", ""},
		{[]string{"frobnicate"}, "", `unknown command "frobnicate"`},
		{[]string{"up", "extra"}, "", `unknown command "extra"`},
	} {
		streams, _, out, _ := genericiooptions.NewTestIOStreams()
		err := Run(t.Context(), tt.args, streams, func(string) string { return "" })
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("lab %v: error %v, want %q", tt.args, err, tt.wantErr)
		}
		if !strings.Contains(out.String(), tt.wantOut) {
			t.Errorf("lab %v: output %q, want it to contain %q", tt.args, out.String(), tt.wantOut)
		}
	}
}

func TestCacheDir(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}, "/xdg"},
		{map[string]string{"XDG_CACHE_HOME": "relative", "HOME": "/home/u"}, "/home/u/.cache"},
		{map[string]string{"HOME": "/home/u"}, "/home/u/.cache"},
		{map[string]string{}, ""},
	} {
		got, err := cacheDir(func(k string) string { return tt.env[k] })
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("cacheDir with %v = %q, %v; want %q", tt.env, got, err, tt.want)
		}
	}
}
