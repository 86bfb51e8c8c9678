// Command quickstart is the smallest herd program: one node, configured from
// the environment (standalone unless SW_CLUSTER says otherwise), that routes
// a keyed message to the peer that owns it — here, itself.
package main

import (
	"context"
	"fmt"
	"log"
	"net"

	"google.golang.org/grpc"

	"github.com/herd-go/herd/cluster"
	_ "github.com/herd-go/herd/cluster/consul"
	_ "github.com/herd-go/herd/cluster/etcd"
	_ "github.com/herd-go/herd/cluster/standalone"
	_ "github.com/herd-go/herd/cluster/zookeeper"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/selector"
)

func main() {
	ctx := context.Background()
	cfg, err := cluster.DefaultConfig() // SW_CLUSTER, SW_CLUSTER_ETCD_ENDPOINTS, ...
	if err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	self, err := cfg.SelfNode(lis.Addr().String())
	if err != nil {
		log.Fatal(err)
	}

	done := make(chan string, 1)
	srv := remote.NewServer()
	if err := srv.Handle("greeter", remote.HandlerFunc(func(_ context.Context, data []byte) {
		done <- string(data)
	})); err != nil {
		log.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	go g.Serve(lis)
	defer g.Stop()

	coord, err := cluster.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer coord.Close()
	if err := coord.RegisterRemote(ctx, self); err != nil {
		log.Fatal(err)
	}
	peers, err := remote.NewManager(coord, self, srv)
	if err != nil {
		log.Fatal(err)
	}
	defer peers.Close()

	key := selector.StringHash("user-42")
	if err := remote.NewSender(peers).Send(ctx, "greeter", key, []byte("hello"), selector.HashCode{}); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s received %q\n", self.ID, <-done)
}
