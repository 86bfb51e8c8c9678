package main

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestDemoRuns runs the README's first command in-process, and checks that
// nothing it started outlives it.
func TestDemoRuns(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Setenv("SW_CLUSTER", "")
	if err := run(3, 300, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestDemoRefusesBadFlags(t *testing.T) {
	for _, c := range [][2]int{{1, 10}, {65, 10}, {3, 0}} {
		if err := run(c[0], c[1], time.Second); err == nil {
			t.Errorf("run(%d nodes, %d messages) accepted", c[0], c[1])
		}
	}
}
