package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be a node process, as the command is.
func TestMain(m *testing.M) {
	if port := os.Getenv(nodeEnv); port != "" {
		os.Exit(node(port, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// TestLeaderRuns runs the demo: a crash handed over within the TTL and a
// resignation, each to a larger term (run checks the terms).
func TestLeaderRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out, 3, 2*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"leads, term", "after the crash", "resigned;"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestLeaderRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nodes", "1"}, {"-ttl", "1500ms"}, {"-bogus"}} {
		if code := demo(args, &bytes.Buffer{}, &bytes.Buffer{}); code == 0 {
			t.Errorf("demo(%v) exited 0", args)
		}
	}
}
