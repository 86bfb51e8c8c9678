package nacos_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/nacos"
)

// New connects the Nacos SDK and checks the server answers within Timeout;
// RegisterRemote adds self as an ephemeral instance of ServiceName, and
// Watch follows the server's pushes.
// It needs a running Nacos server, so go test compiles this example without
// running it; the package's conformance tests make the same calls against a
// real server.
func ExampleNew() {
	ctx := context.Background()
	cfg := nacos.DefaultConfig()
	cfg.HostPort = "10.0.0.1:8848" // the HTTP port; gRPC is on port + 1000
	cfg.Username, cfg.Password = "herd", "…"
	coord, err := nacos.New(ctx, cfg, cluster.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err) // names the setting to fix: an unreachable server fails within its timeout
	}
	defer coord.Close() // deregisters: peers see the instance go at once

	self := cluster.Node{ID: "node-a", Address: cluster.Address{Host: "10.0.0.5", Port: 11800}}
	if err := coord.RegisterRemote(ctx, self); err != nil {
		log.Fatal(err) // cluster.ErrDuplicateID if a live process at another address holds the ID
	}
	for nodes := range coord.Watch(ctx) { // every change, pushed by the server
		fmt.Println(len(nodes), "nodes")
	}
}
