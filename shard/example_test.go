package shard_test

import (
	"context"
	"fmt"
	"log"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/shard"
)

// A node joins the group after registering, works on the slots it gains,
// and stops a slot's work when the slot's hold context ends.
func ExampleJoin() {
	ctx := context.Background()
	coord := cluster.NewStandalone() // or cluster.New(ctx, cfg) on any backend
	self := cluster.Node{ID: cluster.NewID(), Address: cluster.Address{Host: "127.0.0.1", Port: 11800}}
	if err := coord.RegisterRemote(ctx, self); err != nil {
		log.Fatal(err)
	}
	defer coord.Close()

	g, err := shard.Join(coord, self.ID, shard.Options{Name: "orders"})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close() // before the coordinator's Close

	change := <-g.Changes(ctx)
	fmt.Println("gained", len(change.Gained), "slots")

	slot := g.SlotOf("order-42")
	work, release, ok := g.Hold(slot)
	if ok {
		// Work on the key; stop when work.Done() is closed (the slot moves).
		_ = work
		release()
	}
	fmt.Println("owner of order-42 is self:", g.Owner(slot) == self.ID)
	// Output:
	// gained 1024 slots
	// owner of order-42 is self: true
}
