package remote_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/selector"
)

// startNode starts what every herd node runs: a gRPC server with herd's service
// mounted, and a coordinator with self registered. stop undoes it.
func startNode(ctx context.Context, id string, srv *remote.Server) (self cluster.Node, coord cluster.Coordinator, stop func()) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	go g.Serve(lis)
	self = cluster.Node{ID: id, Address: cluster.Address{Host: "127.0.0.1", Port: lis.Addr().(*net.TCPAddr).Port}}
	coord = cluster.NewStandalone() // any backend: etcd, consul, …
	if err := coord.RegisterRemote(ctx, self); err != nil {
		panic(err)
	}
	return self, coord, func() { coord.Close(); g.Stop() }
}

// The Manager follows the coordinator's membership and keeps one client per
// node: a gRPC stream per peer, and an in-process client for self.
func ExampleNewManager() {
	ctx := context.Background()
	srv := remote.NewServer()
	self, coord, stop := startNode(ctx, "node-a", srv)
	defer stop()

	peers, err := remote.NewManager(coord, self, srv)
	if err != nil {
		panic(err)
	}
	defer peers.Close()

	snap := peers.Snapshot() // immutable: read it without locks
	for i := range snap.Len() {
		fmt.Println(snap.ID(i), snap.Node(i).Self)
	}
	// Output: node-a true
}

// Send routes each message by the selector over the current snapshot: here
// HashCode on a key, so every message for one key reaches the same node.
func ExampleSender_Send() {
	ctx := context.Background()
	got := make(chan string, 1)
	srv := remote.NewServer()
	if err := srv.Handle("greeter", remote.HandlerFunc(func(_ context.Context, data []byte) {
		got <- string(data)
	})); err != nil {
		panic(err)
	}
	self, coord, stop := startNode(ctx, "node-a", srv)
	defer stop()
	peers, err := remote.NewManager(coord, self, srv)
	if err != nil {
		panic(err)
	}
	defer peers.Close()

	key := selector.StringHash("user-42")
	if err := remote.NewSender(peers).Send(ctx, "greeter", key, []byte("hello"), selector.HashCode{}); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	// Output: hello
}
