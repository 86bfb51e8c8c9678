package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSlotsRuns runs the demo: run fails if a round processed a key twice
// or never, or a move was above the minimum.
func TestSlotsRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out, 3); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"added w4", "killed w2", "(the leader)", "keys twice 0, never 0", "exactly once in every round"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestSlotsRefusesBadWorkers(t *testing.T) {
	for _, n := range []int{1, 17} {
		if err := run(t.Context(), &bytes.Buffer{}, n); err == nil {
			t.Errorf("run with %d workers did not fail", n)
		}
	}
}
