// Package testnode starts whole herd nodes for tests of the packages that
// sit on top of a node (inspect, metrics, status, the gRPC resolver, the
// herd command): a real etcd in-process, and per node an etcd coordinator,
// a remote.Server behind a real gRPC server on loopback, and a Manager.
package testnode

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/etcd"
	"github.com/herd-go/herd/internal/embedetcd"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/remote"
)

var quiet = slog.New(slog.DiscardHandler)

// Etcd starts an embedded etcd that the test's cleanup stops, and returns
// its endpoint.
func Etcd(t testing.TB) string {
	t.Helper()
	s, err := embedetcd.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.Endpoint()
}

// Node is one running node.
type Node struct {
	// Endpoint is the etcd the node registered with.
	Endpoint string
	Self     cluster.Node
	Coord    *etcd.Coordinator
	Server   *remote.Server
	Manager  *remote.Manager
	Sender   *remote.Sender
	// GRPC serves Server (and whatever else the test registered with
	// Register before Start) at Self.Address.
	GRPC *grpc.Server

	done    chan struct{}
	stopped bool
}

// Options shape a node.
type Options struct {
	// Meta is the node's metadata.
	Meta map[string]string
	// Register adds services to the node's gRPC server before it serves.
	Register func(*grpc.Server)
	// Handle registers workers on the node's remote.Server.
	Handle func(*remote.Server)
	// Health mounts grpc.health.v1 (remote.Server.RegisterHealth).
	Health bool
	// Refresh is the Manager's safety-net query interval; default 1s.
	Refresh time.Duration
}

// Start starts a node on the etcd at endpoint. The test's cleanup stops it
// unless Stop did.
func Start(t testing.TB, endpoint string, o Options) *Node {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := cluster.ParseAddress(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Endpoint: endpoint, Self: cluster.Node{ID: cluster.NewID(), Address: addr, Meta: o.Meta}, Server: remote.NewServer(),
		GRPC: grpc.NewServer(), done: make(chan struct{})}
	if o.Handle != nil {
		o.Handle(n.Server)
	}
	n.Server.Register(n.GRPC)
	if o.Health {
		n.Server.RegisterHealth(n.GRPC)
	}
	if o.Register != nil {
		o.Register(n.GRPC)
	}
	go func() { defer close(n.done); _ = n.GRPC.Serve(lis) }()

	cfg := etcd.DefaultConfig()
	cfg.Endpoints, cfg.TTL, cfg.DialTimeout = endpoint, 3*time.Second, 2*time.Second
	n.Coord, err = etcd.New(context.Background(), cfg, cluster.WithLogger(quiet),
		cluster.WithBackoff(cluster.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}))
	if err != nil {
		n.GRPC.Stop()
		t.Fatal(err)
	}
	if err := n.Coord.RegisterRemote(context.Background(), n.Self); err != nil {
		n.Coord.Close()
		n.GRPC.Stop()
		t.Fatal(err)
	}
	n.Manager, err = remote.NewManager(n.Coord, n.Self, n.Server, remote.WithRefreshInterval(cmp.Or(o.Refresh, time.Second)),
		remote.WithErrorHandler(func(error) {}), remote.WithClientOptions(remote.WithClientLogger(quiet)))
	if err != nil {
		n.Coord.Close()
		n.GRPC.Stop()
		t.Fatal(err)
	}
	n.Sender = remote.NewSender(n.Manager)
	t.Cleanup(n.Stop)
	return n
}

// Stop closes the node gracefully: Manager, coordinator (deregistering),
// then the gRPC server. Calling it again does nothing.
func (n *Node) Stop() {
	if n.stopped {
		return
	}
	n.stopped = true
	n.Manager.Close()
	n.Coord.Close()
	n.GRPC.Stop()
	<-n.done
}

// Cluster starts count nodes on one new embedded etcd and waits until each
// sees all of them.
func Cluster(t testing.TB, count int, o Options) []*Node {
	t.Helper()
	endpoint := Etcd(t)
	nodes := make([]*Node, count)
	for i := range nodes {
		nodes[i] = Start(t, endpoint, o)
	}
	WaitViews(t, nodes, count)
	return nodes
}

// WaitViews waits until every node's view has size nodes.
func WaitViews(t testing.TB, nodes []*Node, size int) {
	t.Helper()
	clusterwait.WaitUntil(t, 10*time.Second, "every node to see the cluster", func() bool {
		for _, n := range nodes {
			if n.Manager.Snapshot().Len() != size {
				return false
			}
		}
		return true
	})
}
