package shard_test

import (
	"context"
	"fmt"
	"log"
	"sync"

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

	g, err := shard.Join(coord, self.ID, shard.WithName("orders"))
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

// The handover pattern: start a slot's work when the slot is gained and held,
// stop it when the hold's context ends (the leader revoked the slot, or the
// group closed), flush what the slot's work keeps, and only then release:
// the leader gives the slot to its new owner once every hold on it is
// released, so the new owner never starts before the old one has flushed.
func ExampleGroup_Hold() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	coord := cluster.NewStandalone() // or cluster.New(ctx, cfg) on any backend
	self := cluster.Node{ID: "node-a", Address: cluster.Address{Host: "127.0.0.1", Port: 11800}}
	if err := coord.RegisterRemote(ctx, self); err != nil {
		log.Fatal(err)
	}
	defer coord.Close()
	g, err := shard.Join(coord, self.ID, shard.WithName("orders"), shard.WithSlots(4))
	if err != nil {
		log.Fatal(err)
	}

	var workers sync.WaitGroup
	flushed := make(chan int, 4)
	change := <-g.Changes(ctx)
	for _, slot := range change.Gained {
		work, release, ok := g.Hold(slot)
		if !ok {
			continue // lost again already
		}
		workers.Go(func() {
			defer release() // last: the slot may move once every hold is released
			<-work.Done()   // the slot's work runs until the slot is revoked
			flushed <- slot // flush the slot's state here, within Options.OwnershipTTL
		})
	}
	if err := g.Close(); err != nil { // gives up every slot: each hold's context ends
		log.Fatal(err)
	}
	workers.Wait()
	close(flushed)
	n := 0
	for range flushed {
		n++
	}
	fmt.Println("held", len(change.Gained), "slots; flushed", n, "before release")
	// Output: held 4 slots; flushed 4 before release
}

// A key's slot never changes between versions; a Java String.hashCode key
// maps as SkyWalking's HashCodeSelector would pick a peer.
func ExampleNewMapping() {
	m, err := shard.NewMapping(shard.DefaultSlots)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Slots(), m.Of("order-42"), m.OfJavaString("user-42"))
	// Output: 1024 335 64
}

// Assign is the leader's pure function: balanced, and a join moves to the
// newcomer exactly the slots it gets, nothing between the others.
func ExampleAssign() {
	two := shard.Assign(shard.Table{}, []string{"a", "b"}, 12)
	three := shard.Assign(two, []string{"a", "b", "c"}, 12)
	fmt.Println(two.Counts(), three.Counts(), "moved", shard.Moved(two, three))
	// Output: map[a:6 b:6] map[a:4 b:4 c:4] moved 4
}
