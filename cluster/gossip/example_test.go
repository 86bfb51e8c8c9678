package gossip_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/gossip"
)

// Two members on one host: the first listens on a free port (BindPort 0)
// and its Addr is the seed the second joins through. RegisterRemote waits
// until a seed has answered, so once it returns the ID is known to be free
// and the seed's view is here. Through cluster.New, SW_CLUSTER=gossip and
// SW_CLUSTER_GOSSIP_SEEDS do the same.
func ExampleNew() {
	ctx := context.Background()
	cfg := gossip.DefaultConfig()
	cfg.BindAddr, cfg.BindPort = "127.0.0.1", 0 // 0: a free port; Addr says which
	cfg.Profile = "local"
	first, err := gossip.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer first.Close()
	if err := first.RegisterRemote(ctx, cluster.Node{ID: "node-a", Address: cluster.Address{Host: "127.0.0.1", Port: 11800}}); err != nil {
		panic(err)
	}

	cfg.Seeds = first.Addr() // host:port of the first member's gossip
	second, err := gossip.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer second.Close()
	if err := second.RegisterRemote(ctx, cluster.Node{ID: "node-b", Address: cluster.Address{Host: "127.0.0.1", Port: 11801}}); err != nil {
		panic(err)
	}

	nodes, err := second.QueryRemoteNodes(ctx) // this member's own view
	if err != nil {
		panic(err)
	}
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	fmt.Println(ids)
	// Output: [node-a node-b]
}
