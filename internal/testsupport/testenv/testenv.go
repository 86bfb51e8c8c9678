// Package testenv finds the real backend servers integration tests run
// against. scripts/test.sh (or compose.yaml) starts them and exports their
// addresses; a test that cannot find its server fails when CI=true and
// skips, saying how to run it, otherwise.
package testenv

import (
	"os"
	"testing"
)

// Require returns the value of the environment variable name. When it is
// unset the test fails under CI=true, and is skipped elsewhere.
func Require(t testing.TB, name, what string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := name + " is not set: " + what + " is needed; ./scripts/test.sh starts it (or use compose.yaml, see docs/testing.md)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
