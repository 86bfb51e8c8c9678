package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-go/herd/internal/testsupport/leakcheck"
)

// TestDemoRuns runs the README's first command in-process, and checks that
// nothing it started outlives it.
func TestDemoRuns(t *testing.T) {
	leakcheck.Register(t)
	t.Setenv("SW_CLUSTER", "")
	if err := run(t.Context(), io.Discard, "", 3, 300, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestDemoRunsOnGossip runs the demo with no server at all.
func TestDemoRunsOnGossip(t *testing.T) {
	// memberlist's probe of a member that has just shut down ends by itself
	// at its timeout: leakcheck waits for it, as the gossip tests do.
	leakcheck.Register(t)
	var out bytes.Buffer
	if err := run(t.Context(), &out, "gossip", 4, 300, 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "backend: gossip") || !strings.Contains(out.String(), "every remaining node dropped node-4") {
		t.Errorf("the output does not show a gossip cluster and its leave:\n%s", out.String())
	}
}

func TestDemoRefusesBadFlags(t *testing.T) {
	for _, c := range [][2]int{{1, 10}, {65, 10}, {3, 0}} {
		if err := run(t.Context(), io.Discard, "", c[0], c[1], time.Second); err == nil {
			t.Errorf("run(%d nodes, %d messages) accepted", c[0], c[1])
		}
	}
}

func TestDemoUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := demo([]string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("-h exit code %d", code)
	}
	for _, want := range []string{"SW_CLUSTER", "SW_CLUSTER_CONSUL_HOST_PORT", "-nodes", "-backend", "gossip"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("-h does not mention %s:\n%s", want, errOut.String())
		}
	}
	errOut.Reset()
	if code := demo([]string{"-nodes", "3", "extra"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `"extra"`) {
		t.Fatalf("extra argument: exit %d, stderr %q; want 2 and the argument named", code, errOut.String())
	}
}

// TestDemoCleansUpOnSignals kills the built demo the ways a user does, and
// checks that the embedded etcd's temporary data directory is gone.
func TestDemoCleansUpOnSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the demo")
	}
	bin := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, how := range []string{"SIGTERM", "SIGINT", "closed pipe"} {
		t.Run(how, func(t *testing.T) {
			tmp := t.TempDir()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-messages", "100000")
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "SW_CLUSTER=")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "backend: embedded etcd") {
				t.Fatalf("first line %q, %v", line, err)
			}
			if dirs, _ := filepath.Glob(filepath.Join(tmp, "herd-etcd-*")); len(dirs) != 1 {
				t.Fatalf("want the etcd data directory under TMPDIR while running, found %v", dirs)
			}
			switch how {
			case "SIGTERM":
				_ = cmd.Process.Signal(syscall.SIGTERM)
			case "SIGINT":
				_ = cmd.Process.Signal(syscall.SIGINT)
			case "closed pipe":
				stdout.Close() // the demo's next write gets SIGPIPE, as under demo | head -1
			}
			go io.Copy(io.Discard, stdout)
			_ = cmd.Wait()
			if ctx.Err() != nil {
				t.Fatal("the demo did not stop within a minute")
			}
			if dirs, _ := filepath.Glob(filepath.Join(tmp, "herd-etcd-*")); len(dirs) != 0 {
				t.Fatalf("%s left %v behind", how, dirs)
			}
		})
	}
}
