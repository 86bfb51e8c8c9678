package consul_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/consul"
)

// New finds a Consul agent that answers; RegisterRemote registers self as
// an instance of ServiceName with a TTL check herd keeps passing, and Watch
// follows the passing instances with blocking queries.
// It needs a running Consul agent, so go test compiles this example without
// running it; the package's conformance tests make the same calls against a
// real server.
func ExampleNew() {
	ctx := context.Background()
	cfg := consul.DefaultConfig()
	cfg.HostPort = "127.0.0.1:8500" // the local agent; list more to fail over in order
	cfg.ACLToken = "…"              // service:write on ServiceName, read on the rest
	coord, err := consul.New(ctx, cfg, cluster.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err) // names the setting to fix: an unreachable server fails within its timeout
	}
	defer coord.Close() // deregisters: peers' blocking queries return at once

	self := cluster.Node{ID: "node-a", Address: cluster.Address{Host: "10.0.0.5", Port: 11800}}
	if err := coord.RegisterRemote(ctx, self); err != nil {
		log.Fatal(err) // cluster.ErrDuplicateID if a live process at another address holds the ID
	}
	for nodes := range coord.Watch(ctx) { // every change, pushed by the server
		fmt.Println(len(nodes), "nodes")
	}
}
