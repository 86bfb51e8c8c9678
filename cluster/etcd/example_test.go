package etcd_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/etcd"
)

// New connects to the etcd cluster the Config names; RegisterRemote puts
// self under a lease that herd keeps alive, and Watch follows the others.
// It needs a running etcd, so go test compiles this example without
// running it; the package's conformance tests make the same calls against a
// real server.
func ExampleNew() {
	ctx := context.Background()
	cfg := etcd.DefaultConfig()
	cfg.Endpoints = "10.0.0.1:2379,10.0.0.2:2379" // SW_CLUSTER_ETCD_ENDPOINTS through cluster.New
	cfg.TTL = 10 * time.Second
	coord, err := etcd.New(ctx, cfg, cluster.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err) // names the setting to fix: an unreachable server fails within its timeout
	}
	defer coord.Close() // revokes the lease: peers drop this node at once

	self := cluster.Node{ID: "node-a", Address: cluster.Address{Host: "10.0.0.5", Port: 11800}}
	if err := coord.RegisterRemote(ctx, self); err != nil {
		log.Fatal(err) // cluster.ErrDuplicateID if a live process at another address holds the ID
	}
	for nodes := range coord.Watch(ctx) { // every change, pushed by the server
		fmt.Println(len(nodes), "nodes")
	}
}
