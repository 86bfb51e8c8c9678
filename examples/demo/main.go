// Command demo runs a herd cluster in one process: a real etcd (embedded),
// several nodes each with its own coordinator, manager and gRPC server on
// 127.0.0.1, and keyed messages routed by selector.HashCode. It checks that
// every key reached exactly one owner, closes one node, times how long every
// other node's view takes to drop it, and routes again.
//
//	go run ./examples/demo -nodes 3 -messages 3000
//
// With SW_CLUSTER (and that backend's variables) set, it uses that backend
// instead of the embedded etcd, e.g.
//
//	SW_CLUSTER=etcd SW_CLUSTER_ETCD_ENDPOINTS=10.0.0.1:2379 go run ./examples/demo
//
// -backend gossip (or SW_CLUSTER=gossip) needs no server at all: the nodes
// gossip among themselves on loopback, seeded by the first one.
//
// SIGINT, SIGTERM, SIGHUP and a closed output pipe (demo | head) stop it
// cleanly: every node leaves and the embedded etcd's data directory is
// removed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"

	"github.com/herd-go/herd/cluster"
	_ "github.com/herd-go/herd/cluster/consul"
	_ "github.com/herd-go/herd/cluster/etcd"
	"github.com/herd-go/herd/cluster/gossip"
	_ "github.com/herd-go/herd/cluster/nacos"
	_ "github.com/herd-go/herd/cluster/zookeeper"
	"github.com/herd-go/herd/internal/embedetcd"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/selector"
)

const worker = "demo"

func main() { os.Exit(demo(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `Usage: go run ./examples/demo [flags]

Starts a herd cluster in this process: N nodes, each with its own coordinator,
manager and gRPC server on 127.0.0.1, routes keyed messages by HashCode, closes
one node and routes again.

The backend is the embedded etcd unless -backend gossip (no server at all: the
nodes gossip among themselves, seeded by the first) or SW_CLUSTER names another,
configured by that backend's variables as in herd's docs/backends/, e.g.
  SW_CLUSTER=etcd      SW_CLUSTER_ETCD_ENDPOINTS=host:2379
  SW_CLUSTER=consul    SW_CLUSTER_CONSUL_HOST_PORT=host:8500
  SW_CLUSTER=zookeeper SW_CLUSTER_ZK_HOST_PORT=host:2181
  SW_CLUSTER=nacos     SW_CLUSTER_NACOS_HOST_PORT=host:8848
(standalone shows each node only itself, and kubernetes needs the nodes to be
pods, so the demo runs on neither.)

Flags:
`

// demo runs the command with args and returns its exit code: 0 on success,
// 1 when the run fails, 2 for bad usage.
func demo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	nodes := fs.Int("nodes", 3, "how many nodes to start (2-64)")
	messages := fs.Int("messages", 3000, "how many keyed messages each round sends")
	timeout := fs.Duration("timeout", 30*time.Second, "how long each step may take")
	backend := fs.String("backend", os.Getenv("SW_CLUSTER"), "the cluster backend: empty for the embedded etcd, gossip for none at all, or any SW_CLUSTER value")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected arguments %q: the demo takes flags only (see -h)\n", fs.Args())
		return 2
	}
	// A signal, or a reader that went away (SIGPIPE, as in demo | head),
	// ends the run through ctx, so that the deferred clean-up runs.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer stop()
	if err := run(ctx, stdout, *backend, *nodes, *messages, *timeout); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "demo: stopped by a signal; cleaned up")
			return 1
		}
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return 0
}

// ledger records which node received each key.
type ledger struct {
	mu    sync.Mutex
	owner map[string][]string
	total int
}

func (l *ledger) handler(nodeID string) remote.Handler {
	return remote.HandlerFunc(func(_ context.Context, data []byte) {
		l.mu.Lock()
		l.owner[string(data)] = append(l.owner[string(data)], nodeID)
		l.total++
		l.mu.Unlock()
	})
}

func (l *ledger) reset() {
	l.mu.Lock()
	l.owner, l.total = map[string][]string{}, 0
	l.mu.Unlock()
}

type node struct {
	self    cluster.Node
	coord   cluster.Coordinator
	manager *remote.Manager
	sender  *remote.Sender
	grpc    *grpc.Server
	done    chan struct{}
}

func (n *node) close() error {
	err := errors.Join(n.manager.Close(), n.coord.Close())
	n.grpc.GracefulStop()
	<-n.done
	return err
}

func run(ctx context.Context, out io.Writer, backend string, nodeCount, messages int, timeout time.Duration) error {
	if nodeCount < 2 || nodeCount > 64 {
		return fmt.Errorf("-nodes %d: want 2 to 64", nodeCount)
	}
	if messages < 1 {
		return fmt.Errorf("-messages %d: want at least 1", messages)
	}

	overrides := map[string]string{}
	switch backend {
	case "":
		srv, err := embedetcd.Start("")
		if err != nil {
			return err
		}
		defer srv.Close()
		overrides["SW_CLUSTER"] = "etcd"
		overrides["SW_CLUSTER_ETCD_ENDPOINTS"] = srv.Endpoint()
		fmt.Fprintf(out, "backend: embedded etcd at %s (set SW_CLUSTER to use an external backend)\n", srv.Endpoint())
	case "standalone":
		return errors.New("SW_CLUSTER=standalone shows each node only itself; the demo needs a shared backend: unset SW_CLUSTER to use the embedded etcd")
	case "kubernetes":
		return errors.New("SW_CLUSTER=kubernetes needs the demo's nodes to be pods; run it with another backend, or see cluster/kubernetes")
	case "gossip":
		// Every node gossips on its own free loopback port; the first is
		// the others' seed (set once it listens).
		overrides["SW_CLUSTER"] = "gossip"
		overrides["SW_CLUSTER_GOSSIP_BIND_ADDR"] = "127.0.0.1"
		overrides["SW_CLUSTER_GOSSIP_BIND_PORT"] = "0"
		if _, set := os.LookupEnv("SW_CLUSTER_GOSSIP_PROFILE"); !set {
			overrides["SW_CLUSTER_GOSSIP_PROFILE"] = "local"
		}
		fmt.Fprintln(out, "backend: gossip (hashicorp/memberlist) on 127.0.0.1, no server: the first node is the others' seed")
	default:
		fmt.Fprintf(out, "backend: %s, from SW_CLUSTER and its environment variables\n", backend)
	}
	if _, set := os.LookupEnv("SW_CLUSTER_ETCD_TTL"); !set && overrides["SW_CLUSTER"] == "etcd" {
		overrides["SW_CLUSTER_ETCD_TTL"] = "5s"
		fmt.Fprintln(out, "etcd lease TTL: 5s, the demo's own (herd's default is 10s; SW_CLUSTER_ETCD_TTL overrides)")
	}
	// Keep the demo's nodes apart from any real cluster on an external backend.
	name := "herd-demo-" + strconv.Itoa(os.Getpid())
	overrides["SW_CLUSTER_ETCD_SERVICE_NAME"] = name // etcd
	overrides["SW_SERVICE_NAME"] = name              // consul, nacos
	overrides["SW_NAMESPACE"] = name                 // zookeeper
	overrides["SW_CLUSTER_GOSSIP_CLUSTER_NAME"] = name
	if backend != "" {
		fmt.Fprintf(out, "service name / namespace / gossip cluster: %s, the demo's own, so it does not mix with a real cluster\n", name)
	}

	ctx, cancel := context.WithTimeout(ctx, 5*timeout)
	defer cancel()
	led := &ledger{owner: map[string][]string{}}
	var all []*node
	defer func() {
		for _, n := range all {
			_ = n.close()
		}
	}()
	for i := 1; i <= nodeCount; i++ {
		id := fmt.Sprintf("node-%d", i)
		n, err := startNode(ctx, id, overrides, led)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		all = append(all, n)
		if g, ok := n.coord.(*gossip.Coordinator); ok && i == 1 {
			overrides["SW_CLUSTER_GOSSIP_SEEDS"] = g.Addr()
		}
	}
	fmt.Fprintf(out, "started %d nodes; waiting until every node sees all of them\n", nodeCount)
	if _, err := waitViews(ctx, all, timeout, func(s *remote.Snapshot) bool { return s.Len() == nodeCount }); err != nil {
		return err
	}

	if err := round(ctx, out, all, led, messages, timeout); err != nil {
		return err
	}

	leaving := all[len(all)-1]
	all = all[:len(all)-1]
	fmt.Fprintf(out, "\nclosing %s (graceful leave)\n", leaving.self.ID)
	start := time.Now()
	if err := leaving.close(); err != nil {
		return fmt.Errorf("closing %s: %w", leaving.self.ID, err)
	}
	gone, err := waitViews(ctx, all, timeout, func(s *remote.Snapshot) bool {
		return !slices.ContainsFunc(s.Nodes(), func(n cluster.Node) bool { return n.ID == leaving.self.ID })
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "every remaining node dropped %s %s after Close began\n", leaving.self.ID, gone.Sub(start).Round(time.Millisecond))

	return round(ctx, out, all, led, messages, timeout)
}

func startNode(ctx context.Context, id string, overrides map[string]string, led *ledger) (*node, error) {
	cfg, err := cluster.DefaultConfig(cluster.WithLookupEnv(func(name string) (string, bool) {
		if name == "SW_CLUSTER_NODE_ID" {
			return id, true
		}
		if v, ok := overrides[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}))
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	self, err := cfg.SelfNode(lis.Addr().String())
	if err != nil {
		lis.Close()
		return nil, err
	}
	srv := remote.NewServer()
	if err := srv.Handle(worker, led.handler(id)); err != nil {
		lis.Close()
		return nil, err
	}
	g := grpc.NewServer()
	srv.Register(g)
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	stopServer := func() { g.Stop(); <-done }

	coord, err := cluster.New(ctx, cfg)
	if err != nil {
		stopServer()
		return nil, err
	}
	if err := coord.RegisterRemote(ctx, self); err != nil {
		coord.Close()
		stopServer()
		return nil, err
	}
	m, err := remote.NewManager(coord, self, srv)
	if err != nil {
		coord.Close()
		stopServer()
		return nil, err
	}
	return &node{self: self, coord: coord, manager: m, sender: remote.NewSender(m), grpc: g, done: done}, nil
}

// waitViews waits until every node's snapshot satisfies ok and returns when.
func waitViews(ctx context.Context, nodes []*node, timeout time.Duration, ok func(*remote.Snapshot) bool) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		all := true
		for _, n := range nodes {
			if !ok(n.manager.Snapshot()) {
				all = false
				break
			}
		}
		if all {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			var views []string
			for _, n := range nodes {
				views = append(views, fmt.Sprintf("%s sees %d", n.self.ID, n.manager.Snapshot().Len()))
			}
			return time.Time{}, fmt.Errorf("views did not settle within %s: %v", timeout, views)
		}
		time.Sleep(time.Millisecond)
	}
}

// round sends messages keys spread over every node, routed by HashCode,
// waits for delivery and prints who received what.
func round(ctx context.Context, out io.Writer, nodes []*node, led *ledger, messages int, timeout time.Duration) error {
	led.reset()
	sent := map[string]int{}
	expected := map[string]string{} // key → owner by the sender's view
	for k := 0; k < messages; k++ {
		from := nodes[k%len(nodes)]
		key := "key-" + strconv.Itoa(k)
		hash := selector.StringHash(key)
		snap := from.manager.Snapshot()
		i, _ := selector.HashCode{}.Select(hash, snap)
		expected[key] = snap.ID(i)
		if err := from.sender.Send(ctx, worker, hash, []byte(key), selector.HashCode{}); err != nil {
			return fmt.Errorf("%s sending %s: %w", from.self.ID, key, err)
		}
		sent[from.self.ID]++
	}
	deadline := time.Now().Add(timeout)
	for {
		led.mu.Lock()
		total := led.total
		led.mu.Unlock()
		if total >= messages {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d messages delivered within %s", total, messages, timeout)
		}
		time.Sleep(time.Millisecond)
	}

	led.mu.Lock()
	defer led.mu.Unlock()
	received := map[string]int{}
	var problems []string
	for key, want := range expected {
		got := led.owner[key]
		if len(got) != 1 || got[0] != want {
			problems = append(problems, fmt.Sprintf("%s reached %v, want exactly [%s]", key, got, want))
			continue
		}
		received[got[0]]++
	}
	fmt.Fprintf(out, "\n%d messages, routed by HashCode over %d nodes:\n", messages, len(nodes))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\taddress\tsent\treceived\tshare\t")
	for _, n := range nodes {
		id := n.self.ID
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f%%\t\n", id, n.self.Address, sent[id], received[id], 100*float64(received[id])/float64(messages))
	}
	tw.Flush()
	if len(problems) > 0 {
		return fmt.Errorf("%d keys misrouted, e.g. %s", len(problems), problems[0])
	}
	fmt.Fprintf(out, "every one of %d keys reached exactly one owner, the one every node's view agrees on\n", messages)
	return nil
}
