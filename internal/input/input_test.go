package input

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SET": "value", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	if got := Env(getenv, "SET", "def"); got != "value" {
		t.Errorf("Env(SET) = %q", got)
	}
	if got := Env(getenv, "EMPTY", "def"); got != "def" {
		t.Errorf("Env(EMPTY) = %q, want the default", got)
	}
}

func TestSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got, err := SecretFile(write("token", "s3cret\r\n")); err != nil || got != "s3cret" {
		t.Errorf("SecretFile = %q, %v; want s3cret", got, err)
	}
	if _, err := SecretFile(write("empty", "\n")); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("SecretFile of an empty file = %v", err)
	}
	if _, err := SecretFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("SecretFile of a missing file succeeded")
	}
}

func TestBoolAndList(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{"true": true, " Yes ": true, "1": true, "off": false, "F": false} {
		if got, err := Bool(in); err != nil || got != want {
			t.Errorf("Bool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := Bool("maybe"); err == nil {
		t.Error("Bool(maybe) succeeded")
	}
	if got := List(" a, ,b,"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("List = %q", got)
	}
}
