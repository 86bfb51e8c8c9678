// Package testserver runs real backend servers as child processes for tests
// that must kill (SIGKILL) and restart them on the same data. Each server
// runs in its own process group and is stopped by pid when the test ends.
package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-go/herd/internal/ports"
)

// Proc is one server process that can be killed and started again.
type Proc struct {
	t     testing.TB
	name  string
	bin   string
	args  []string
	dir   string
	data  string // the server's data, which StartEmpty removes
	ready func(ctx context.Context) error
	cmd   *exec.Cmd
	exit  chan struct{}
	log   string
	// logs is a glob of the server's own log files (a JVM server logs
	// there, not on stdout), shown when it fails to start.
	logs string
}

func newProc(t testing.TB, name, bin string, args []string, dir string, ready func(context.Context) error) *Proc {
	p := &Proc{t: t, name: name, bin: bin, args: args, dir: dir, ready: ready, log: filepath.Join(dir, name+".log")}
	t.Cleanup(p.Kill)
	return p
}

// Start starts the process and waits until it is ready. A process that
// exits before it is ready is started again, twice at most: a JVM server
// restarted on its old ports has been seen to exit at once, silently, now
// and then (the Nacos server in CI).
func (p *Proc) Start() {
	p.t.Helper()
	for attempt := 1; ; attempt++ {
		err := p.start()
		if err == nil {
			return
		}
		if !errors.Is(err, errExited) || attempt == 3 {
			p.t.Fatal(err)
		}
		p.t.Logf("%v; starting it again (attempt %d)", err, attempt+1)
		time.Sleep(time.Second)
	}
}

// errExited marks a process that exited before it was ready.
var errExited = errors.New("exited before it was ready")

func (p *Proc) start() error {
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %v", p.name, err)
	}
	p.cmd, p.exit = cmd, make(chan struct{})
	go func(exit chan struct{}) { _ = cmd.Wait(); close(exit) }(p.exit)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		err := p.ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.exit:
			out, _ := os.ReadFile(p.log)
			p.cmd = nil
			return fmt.Errorf("%s %w (%s): %v\n%s%s", p.name, errExited, cmd.ProcessState, err, tail(out), p.ownLogs())
		case <-ctx.Done():
			out, _ := os.ReadFile(p.log)
			return fmt.Errorf("%s not ready within 90s: %v\n%s", p.name, err, tail(out))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StartEmpty starts the stopped process on an empty data directory, as a
// rebuilt or restored-from-nothing server comes back.
func (p *Proc) StartEmpty() {
	p.t.Helper()
	if p.cmd != nil {
		p.t.Fatalf("%s: StartEmpty while it runs; Kill it first", p.name)
	}
	if err := os.RemoveAll(p.data); err != nil {
		p.t.Fatal(err)
	}
	p.Start()
}

// Kill sends SIGKILL to the process group and waits for the process to exit.
func (p *Proc) Kill() {
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exit
	p.cmd = nil
}

// ownLogs returns the tails of the server's own log files, if it has any.
func (p *Proc) ownLogs() string {
	if p.logs == "" {
		return ""
	}
	files, _ := filepath.Glob(p.logs)
	var b strings.Builder
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "\n--- %s:\n%s", filepath.Base(f), tail(data))
		}
	}
	return b.String()
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// FreePort returns a loopback TCP port that was free a moment ago, below
// the ephemeral range (see package ports: a restarted server must find its
// port free).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := ports.Free()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dialOK(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

var errNotReady = errors.New("not ready")

func errorf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errNotReady}, a...)...)
}
