// Command quickstart is the smallest herd program: one node, configured from
// the environment (standalone unless SW_CLUSTER=etcd), that routes a keyed
// message to the node that owns it; alone, that is itself.
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"

	"google.golang.org/grpc"

	"github.com/herd-go/herd/cluster"
	_ "github.com/herd-go/herd/cluster/etcd" // SW_CLUSTER=etcd selects it; standalone needs no import
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/remote/peertls"
	"github.com/herd-go/herd/selector"
)

func main() {
	ctx := context.Background()
	cfg, err := cluster.DefaultConfig() // SW_CLUSTER, SW_CLUSTER_ETCD_ENDPOINTS, …
	if err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	self, err := cfg.SelfNode(lis.Addr().String()) // stable ID + advertised address
	if err != nil {
		log.Fatal(err)
	}

	// Mutual TLS between peers when SW_CLUSTER_TLS_* name the files; else plaintext.
	creds, err := peertls.Load(cfg)
	if err != nil {
		log.Fatal(err)
	}

	got := make(chan string, 1)
	srv := remote.NewServer()
	if err := srv.Handle("greeter", remote.HandlerFunc(func(_ context.Context, data []byte) {
		got <- string(data)
	})); err != nil {
		log.Fatal(err)
	}
	g := grpc.NewServer(creds.ServerOption())
	srv.Register(g) // mount on your own *grpc.Server
	go g.Serve(lis)
	defer g.Stop()

	coord, err := cluster.New(ctx, cfg, cluster.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	defer coord.Close() // graceful leave: peers drop this node at once
	if err := coord.RegisterRemote(ctx, self); err != nil {
		log.Fatal(err)
	}
	peers, err := remote.NewManager(coord, self, srv, // pushed by the watch, checked every 10 s
		remote.WithClientOptions(remote.WithDialOptions(creds.DialOption())))
	if err != nil {
		log.Fatal(err)
	}
	defer peers.Close()

	key := selector.StringHash("user-42")
	if err := remote.NewSender(peers).Send(ctx, "greeter", key, []byte("hello"), selector.HashCode{}); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s received %q\n", self.ID, <-got)
}
