package zookeeper_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/zookeeper"
)

// New opens a session within ConnectTimeout; RegisterRemote creates self's
// ephemeral znode under Root, and Watch follows the children.
// It needs a running ZooKeeper ensemble, so go test compiles this example without
// running it; the package's conformance tests make the same calls against a
// real server.
func ExampleNew() {
	ctx := context.Background()
	cfg := zookeeper.DefaultConfig()
	cfg.HostPort = "10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181"
	cfg.SessionTimeout = 10 * time.Second
	coord, err := zookeeper.New(ctx, cfg, cluster.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err) // names the setting to fix: an unreachable server fails within its timeout
	}
	defer coord.Close() // deletes the znode: peers drop this node at once

	self := cluster.Node{ID: "node-a", Address: cluster.Address{Host: "10.0.0.5", Port: 11800}}
	if err := coord.RegisterRemote(ctx, self); err != nil {
		log.Fatal(err) // cluster.ErrDuplicateID if a live process at another address holds the ID
	}
	for nodes := range coord.Watch(ctx) { // every change, pushed by the server
		fmt.Println(len(nodes), "nodes")
	}
}
