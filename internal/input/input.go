// Package input reads what a command takes from its surroundings besides
// its flags: environment variables and files holding a secret.
package input

import (
	"errors"
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

// Bool reads true or false the way people write them in environment
// variables: true, false, 1, 0, yes, no, on, off, y, n, t, f, in any case.
func Bool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on", "y", "t":
		return true, nil
	case "false", "0", "no", "off", "n", "f":
		return false, nil
	}
	return false, errors.New("want true or false")
}

// List splits a comma-separated list, dropping empty entries and spaces.
func List(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
