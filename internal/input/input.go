// Package input reads what a command takes from its surroundings besides
// its flags: environment variables and files holding a secret.
package input

import (
	"fmt"
	"os"
	"strings"
)

// Env returns the variable key from getenv, or def when it is empty.
func Env(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// SecretFile reads a secret (a password, a token) from a file, without the
// trailing newline editors and `echo` leave. An empty file is an error.
// Errors name the file, never its content.
func SecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
