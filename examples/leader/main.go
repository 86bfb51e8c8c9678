// Command leader shows herd's leader election surviving a crash: N node
// processes campaign for one election on an embedded etcd; one leads and
// prints its term; the demo SIGKILLs the leader's process and times the
// takeover (the new term is larger); then the new leader resigns and the
// demo times that handover too.
//
//	go run ./examples/leader -nodes 3 -ttl 3s
//
// Every node is its own OS process (this binary, started again in node
// mode), so the crash is a real one: nothing is released, the leader's etcd
// lease has to run out.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/herd-go/herd/cluster"
	_ "github.com/herd-go/herd/cluster/etcd"
	"github.com/herd-go/herd/internal/embedetcd"
)

// nodeEnv, when set, makes this binary a node: the value is its port.
const nodeEnv = "HERD_EXAMPLE_LEADER_NODE"

const election = "demo"

func main() {
	if port := os.Getenv(nodeEnv); port != "" {
		os.Exit(node(port, os.Stdin, os.Stdout))
	}
	os.Exit(demo(os.Args[1:], os.Stdout, os.Stderr))
}

func demo(args []string, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("leader", flag.ContinueOnError)
	fs.SetOutput(errOut)
	nodes := fs.Int("nodes", 3, "node processes, 2 to 16")
	ttl := fs.Duration("ttl", 3*time.Second, "the election lease TTL (cluster.etcd.electionTTL), whole seconds, at least 2s")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, out, *nodes, *ttl); err != nil {
		fmt.Fprintln(errOut, "leader:", err)
		return 1
	}
	return 0
}

// event is one line a node prints: "lead <id> <term>" or "lost <id> <term> <why>".
type event struct {
	node int
	kind string
	id   string
	term uint64
	at   time.Time
	why  string
}

func run(ctx context.Context, out io.Writer, n int, ttl time.Duration) error {
	if n < 2 || n > 16 {
		return fmt.Errorf("-nodes %d: want 2 to 16", n)
	}
	if ttl < 2*time.Second || ttl%time.Second != 0 {
		return fmt.Errorf("-ttl %s: want whole seconds, at least 2s", ttl)
	}
	srv, err := embedetcd.Start("")
	if err != nil {
		return fmt.Errorf("starting the embedded etcd: %w", err)
	}
	defer srv.Close()
	fmt.Fprintf(out, "embedded etcd at %s; %d node processes campaign for %q with a %s lease\n", srv.Endpoint(), n, election, ttl)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	events := make(chan event, 64)
	procs := make([]*exec.Cmd, n)
	stdins := make([]io.WriteCloser, n)
	for i := range procs {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), nodeEnv+"="+strconv.Itoa(20100+i), "SW_CLUSTER=etcd",
			"SW_CLUSTER_ETCD_ENDPOINTS="+srv.Endpoint(), "SW_CLUSTER_ETCD_SERVICE_NAME=leader-example",
			"SW_CLUSTER_ETCD_ELECTION_TTL="+ttl.String())
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting node %d: %w", i, err)
		}
		procs[i], stdins[i] = cmd, stdin
		go read(i, stdout, events)
	}
	defer func() {
		for i, cmd := range procs {
			stdins[i].Close() // a node leaves when its stdin closes
			if cmd.ProcessState == nil {
				_ = cmd.Wait()
			}
		}
	}()

	first, err := next(ctx, events, "lead", 30*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "node %d (%s) leads, term %d\n", first.node, first.id[:8], first.term)

	killed := time.Now()
	_ = procs[first.node].Process.Kill() // SIGKILL: nothing is released
	_ = procs[first.node].Wait()
	fmt.Fprintf(out, "SIGKILLed node %d; the others wait for its %s lease to run out (etcd checks expiry twice a second)\n", first.node, ttl)
	second, err := next(ctx, events, "lead", ttl+10*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "node %d (%s) leads %s after the crash, term %d (> %d: %t)\n",
		second.node, second.id[:8], second.at.Sub(killed).Round(time.Millisecond), second.term, first.term, second.term > first.term)

	resigned := time.Now()
	fmt.Fprintln(stdins[second.node], "resign")
	third, err := next(ctx, events, "lead", 10*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "node %d resigned; node %d (%s) leads %s later, term %d\n",
		second.node, third.node, third.id[:8], third.at.Sub(resigned).Round(time.Millisecond), third.term)
	if second.term <= first.term || third.term <= second.term {
		return fmt.Errorf("terms did not increase: %d, %d, %d", first.term, second.term, third.term)
	}
	return nil
}

func read(i int, r io.Reader, events chan<- event) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		term, _ := strconv.ParseUint(f[2], 10, 64)
		events <- event{node: i, kind: f[0], id: f[1], term: term, at: time.Now(), why: strings.Join(f[3:], " ")}
	}
}

// next waits for the next event of kind.
func next(ctx context.Context, events <-chan event, kind string, within time.Duration) (event, error) {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case e := <-events:
			if e.kind == kind {
				return e, nil
			}
		case <-timer.C:
			return event{}, fmt.Errorf("no %q event within %s", kind, within)
		case <-ctx.Done():
			return event{}, ctx.Err()
		}
	}
}

// node is one node process: it registers, campaigns until its stdin
// closes, prints "lead"/"lost" lines, and resigns when told "resign".
func node(port string, in io.Reader, out io.Writer) int {
	p, _ := strconv.Atoi(port)
	cfg, err := cluster.DefaultConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := cluster.New(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	self := cluster.Node{ID: cluster.NewID(), Address: cluster.Address{Host: "127.0.0.1", Port: p}}
	if err := c.RegisterRemote(ctx, self); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	elector := c
	resign := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			if sc.Text() == "resign" {
				resign <- struct{}{}
			}
		}
		cancel() // stdin closed: leave
	}()
	for ctx.Err() == nil {
		lead, err := elector.Campaign(ctx, election)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		fmt.Fprintf(out, "lead %s %d\n", self.ID, lead.Term())
		select {
		case <-lead.Done():
		case <-resign:
			_ = lead.Resign(context.Background())
			time.Sleep(time.Second) // let another node win before campaigning again
		case <-ctx.Done():
		}
		fmt.Fprintf(out, "lost %s %d %v\n", self.ID, lead.Term(), lead.Err())
	}
	return 0
}
