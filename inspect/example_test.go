package inspect_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/inspect"
	"github.com/herd-go/herd/remote"
)

// An Inspector reads a node's Manager (and, when given, its coordinator,
// server, elections and slot groups) into one Report: what metrics and
// status present, and what a program can log or test against.
func ExampleNew() {
	ctx := context.Background()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := remote.NewServer()
	g := grpc.NewServer()
	srv.Register(g)
	go g.Serve(lis)
	defer g.Stop()
	self := cluster.Node{ID: "node-a", Address: cluster.Address{Host: "127.0.0.1", Port: lis.Addr().(*net.TCPAddr).Port}}
	coord := cluster.NewStandalone() // or cluster.New(ctx, cfg) on any backend
	defer coord.Close()
	if err := coord.RegisterRemote(ctx, self); err != nil {
		panic(err)
	}
	peers, err := remote.NewManager(coord, self, srv)
	if err != nil {
		panic(err)
	}
	defer peers.Close()

	in, err := inspect.New(inspect.Sources{Manager: peers, Coordinator: coord, Server: srv, Backend: "standalone"})
	if err != nil {
		panic(err)
	}
	defer in.Close()
	r := in.Report()
	for _, m := range r.View.Members {
		fmt.Println(m.ID, "self:", m.Self)
	}
	fmt.Println("registered:", r.Membership.Registration)
	// Output:
	// node-a self: true
	// registered: yes
}
