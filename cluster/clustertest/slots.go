package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/shard"
)

// runSlots checks the Records role and slot sharding (package shard) on
// the backend: CAS semantics, a balanced table for 1 to 7 nodes that moves
// only the minimum, a leader crash in the middle of a move, and a server
// restart — never a slot held by two nodes at once.
func runSlots(t *testing.T, h Harness) {
	t.Run("RecordsCompareAndSwap", func(t *testing.T) { testRecords(t, h) })
	if h.SingleNode {
		t.Run("SelfOwnsEverySlot", func(t *testing.T) {
			f := newFleet(t, h)
			f.join(t, nil)
			f.settle(t, 5*time.Second)
		})
		return
	}
	t.Run("BalancedAndMinimalFromOneToSeven", func(t *testing.T) { testSlotsJoinLeave(t, h) })
	if h.Election.Partitioned != nil {
		t.Run("LeaderCrashMidMove", func(t *testing.T) { testSlotsLeaderCrash(t, h) })
	}
	if h.Recovery != nil {
		t.Run("ServerRestartKeepsTable", func(t *testing.T) { testSlotsRestart(t, h) })
	}
}

func testRecords(t *testing.T, h Harness) {
	c := h.NewCoordinator(t)
	closeOnCleanup(t, c)
	r := c
	name := "r" + cluster.NewID()[:8]
	if _, _, err := r.GetRecord(ctx(t), "Bad/Name"); err == nil {
		t.Error("GetRecord accepted a bad name")
	}
	versions := r.WatchRecord(watchCtx(t), name)
	data, v0, err := r.GetRecord(ctx(t), name)
	if err != nil || v0 != "" || data != nil {
		t.Fatalf("an absent record: %q, version %q, %v; want nil, \"\", nil", data, v0, err)
	}
	v1, err := r.PutRecord(ctx(t), name, []byte("one"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutRecord(ctx(t), name, []byte("again"), ""); !errors.Is(err, cluster.ErrVersionConflict) {
		t.Errorf("creating a record that exists: %v, want ErrVersionConflict", err)
	}
	v2, err := r.PutRecord(ctx(t), name, []byte("two"), v1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutRecord(ctx(t), name, []byte("stale"), v1); !errors.Is(err, cluster.ErrVersionConflict) {
		t.Errorf("writing over a stale version: %v, want ErrVersionConflict", err)
	}
	// A read may lag a write (Nacos serves configs from a cache it
	// refreshes after each write), but not for long.
	var data2 []byte
	var v string
	clusterwait.WaitUntil(t, 5*time.Second, "read back of the last write", func() bool {
		data2, v, err = r.GetRecord(ctx(t), name)
		return err == nil && string(data2) == "two" && v == v2
	})
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-versions:
			if got == v2 {
				return
			}
		case <-deadline:
			t.Fatalf("WatchRecord did not report version %q within 5s", v2)
		}
	}
}

// slotOpts are the groups' options in the suite: 1,024 slots, a short
// rebalance delay so each join is its own move, and an ownership TTL a
// little above the harness's session bounds unless the harness sets one.
func slotOpts(h Harness) []shard.Option {
	ttl := h.OwnershipTTL
	if ttl <= 0 {
		ttl = 2 * time.Second
	}
	return []shard.Option{shard.WithName("s" + cluster.NewID()[:8]), shard.WithRebalanceDelay(slotRebalanceDelay), shard.WithOwnershipTTL(ttl)}
}

// slotRebalanceDelay is the suite's groups' rebalance delay.
const slotRebalanceDelay = 100 * time.Millisecond

// fleet is a set of groups, each on its own coordinator, whose workers
// hold every slot they own until it is revoked, recording each hold.
type fleet struct {
	h     Harness
	opts  []shard.Option
	mu    sync.Mutex
	holds map[int][]holding
	nodes []*member
	// releaseDelay keeps a revoked slot held that long, to stretch a move.
	releaseDelay time.Duration
}

type member struct {
	id     string
	node   cluster.Node
	c      cluster.Coordinator
	g      *shard.Group
	cancel context.CancelFunc
	done   chan struct{}
	gone   bool
}

type holding struct {
	node       string
	start, end time.Time
}

func newFleet(t *testing.T, h Harness) *fleet {
	f := &fleet{h: h, opts: slotOpts(h), holds: map[int][]holding{}}
	t.Cleanup(func() {
		for _, m := range f.nodes {
			f.stop(t, m)
		}
		f.checkHolds(t)
	})
	return f
}

// join starts a member on c (a new coordinator when nil).
func (f *fleet) join(t *testing.T, c cluster.Coordinator) *member {
	t.Helper()
	if c == nil {
		c = f.h.NewCoordinator(t)
	}
	cand := candidate(t, f.h, c)
	g, err := shard.Join(c, cand.Node.ID, f.opts...)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	m := &member{id: cand.Node.ID, node: cand.Node, c: c, g: g, cancel: cancel, done: make(chan struct{})}
	f.nodes = append(f.nodes, m)
	var wg sync.WaitGroup
	changes := g.Changes(wctx)
	go func() {
		defer close(m.done)
		defer wg.Wait()
		for ch := range changes {
			for _, slot := range ch.Gained {
				hctx, release, ok := g.Hold(slot)
				if !ok {
					continue
				}
				start := time.Now()
				wg.Go(func() {
					<-hctx.Done()
					f.mu.Lock()
					delay := f.releaseDelay
					f.mu.Unlock()
					time.Sleep(delay) // work that takes a while to stop
					end := time.Now()
					f.mu.Lock()
					f.holds[slot] = append(f.holds[slot], holding{m.id, start, end})
					f.mu.Unlock()
					release()
				})
			}
		}
	}()
	return m
}

// stop closes a member's group and coordinator (a graceful leave).
func (f *fleet) stop(t *testing.T, m *member) {
	if m.gone {
		return
	}
	m.gone = true
	if err := m.g.Close(); err != nil {
		t.Errorf("closing the group of %s: %v", m.id, err)
	}
	m.cancel()
	<-m.done
	_ = f.h.Leave(t, m.c, m.node)
}

func (f *fleet) alive() []*member {
	var out []*member
	for _, m := range f.nodes {
		if !m.gone {
			out = append(out, m)
		}
	}
	return out
}

// settle waits until every alive member reads the same complete table,
// balanced over the alive members, and owns its part of it; it returns
// that table and how long it took.
func (f *fleet) settle(t *testing.T, within time.Duration) (shard.Table, time.Duration) {
	t.Helper()
	start := time.Now()
	alive := f.alive()
	var why string
	for time.Since(start) < within {
		why = f.settled(alive)
		if why == "" {
			return alive[0].g.Table(), time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the table did not settle within %s: %s", within, why)
	return shard.Table{}, 0
}

func (f *fleet) settled(alive []*member) string {
	ref := alive[0].g.Table()
	counts := ref.Counts()
	lo, hi := len(ref.Owners), 0
	for _, m := range alive {
		tab := m.g.Table()
		if tab.Epoch != ref.Epoch || len(tab.Owners) == 0 {
			return fmt.Sprintf("%s reads epoch %d, %s epoch %d", m.id, tab.Epoch, alive[0].id, ref.Epoch)
		}
		if m.g.Owned().Len() != counts[m.id] {
			return fmt.Sprintf("%s owns %d slots and the table gives it %d", m.id, m.g.Owned().Len(), counts[m.id])
		}
		lo, hi = min(lo, counts[m.id]), max(hi, counts[m.id])
	}
	if slices.Contains(ref.Owners, "") {
		return fmt.Sprintf("epoch %d has slots without an owner", ref.Epoch)
	}
	if len(counts) != len(alive) || hi-lo > 1 {
		return fmt.Sprintf("epoch %d is not balanced over %d members: %v", ref.Epoch, len(alive), counts)
	}
	return ""
}

// checkHolds fails if two members held one slot at the same time.
func (f *fleet) checkHolds(t *testing.T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for slot, hs := range f.holds {
		sort.Slice(hs, func(i, j int) bool { return hs[i].start.Before(hs[j].start) })
		for i := 1; i < len(hs); i++ {
			if hs[i].start.Before(hs[i-1].end) && hs[i].node != hs[i-1].node {
				t.Errorf("slot %d held by %s from %s and by %s until %s: %s of double ownership", slot, hs[i].node, hs[i].start.Format("15:04:05.000"), hs[i-1].node, hs[i-1].end.Format("15:04:05.000"), hs[i-1].end.Sub(hs[i].start))
			}
		}
	}
}

// testSlotsJoinLeave grows a group from one member to seven and shrinks it
// back, HERD_SLOTS_ROUNDS times (default once), checking every table and
// timing each change.
func testSlotsJoinLeave(t *testing.T, h Harness) {
	f := newFleet(t, h)
	within := 10*time.Second + 2*h.Within
	rounds, _ := strconv.Atoi(os.Getenv("HERD_SLOTS_ROUNDS"))
	var joins, leaves []time.Duration
	var prev shard.Table
	for range max(rounds, 1) {
		for n := len(f.alive()) + 1; n <= 7; n++ {
			m := f.join(t, nil)
			next, took := f.settle(t, within)
			if n > 1 {
				joins = append(joins, took)
				moved, newcomer := shard.Moved(prev, next), next.Counts()[m.id]
				if moved != newcomer {
					t.Errorf("join of member %d moved %d slots; the newcomer got %d, the minimum", n, moved, newcomer)
				}
			}
			prev = next
		}
		for alive := f.alive(); len(alive) > 1; alive = f.alive() {
			m := alive[len(alive)-1]
			had := prev.Counts()[m.id]
			f.stop(t, m)
			next, took := f.settle(t, within)
			leaves = append(leaves, took)
			if moved := shard.Moved(prev, next); moved != had {
				t.Errorf("leave of member %d moved %d slots; it had %d, the minimum", len(alive), moved, had)
			}
			prev = next
		}
	}
	jp50, jp99 := clusterwait.Percentiles(joins)
	lp50, lp99 := clusterwait.Percentiles(leaves)
	t.Logf("table in force on every member after a join: p50 %s, p99 %s; after a leave: p50 %s, p99 %s (%d each, RebalanceDelay %s)", jp50, jp99, lp50, lp99, len(joins), slotRebalanceDelay)
}

// testSlotsLeaderCrash cuts the leader off while a move waits for a
// loser's acknowledgement; a new leader must finish it, and give the cut
// leader's slots away only once it cannot be holding them.
func testSlotsLeaderCrash(t *testing.T, h Harness) {
	f := newFleet(t, h)
	pc, cut := h.Election.Partitioned(t)
	leader := f.join(t, pc)
	clusterwait.WaitUntil(t, 10*time.Second, "the first member leads", func() bool { _, ok := leader.g.Leading(); return ok })
	f.join(t, nil)
	f.join(t, nil)
	f.settle(t, 15*time.Second)

	f.mu.Lock()
	f.releaseDelay = 1500 * time.Millisecond // a move now waits that long for its losers
	f.mu.Unlock()
	f.join(t, nil)
	clusterwait.WaitUntil(t, 10*time.Second, "a move in progress", func() bool { return slices.Contains(leader.g.Table().Owners, "") })
	cut()
	cutAt := time.Now()
	if h.Election.Gone != nil {
		h.Election.Gone(t, leader.node)
	}
	leader.gone = true // cut off, it cannot leave gracefully; the cleanup closes its coordinator
	t.Cleanup(func() { _ = leader.g.Close(); leader.cancel(); <-leader.done; _ = pc.Close() })
	f.mu.Lock()
	f.releaseDelay = 0
	f.mu.Unlock()
	f.settle(t, h.Election.TakeoverWithin+20*time.Second)
	t.Logf("leader cut mid-move: the three others own a balanced table %s later", time.Since(cutAt).Round(time.Millisecond))
}

// testSlotsRestart restarts the server under three members: the table
// survives and nobody shares a slot.
func testSlotsRestart(t *testing.T, h Harness) {
	target := h.Recovery(t)
	if target.Register != nil {
		h.Register = target.Register
	}
	h.NewCoordinator = target.NewCoordinator
	f := newFleet(t, h)
	for range 3 {
		f.join(t, nil)
	}
	before, _ := f.settle(t, 15*time.Second)
	target.Kill()
	time.Sleep(time.Second)
	target.Restart()
	after, took := f.settle(t, h.RecoverWithin+20*time.Second)
	if after.Epoch < before.Epoch {
		t.Errorf("after the restart the table is at epoch %d, before it was at %d: the table was lost", after.Epoch, before.Epoch)
	}
	t.Logf("server restart: the table settled %s after the server was back (moved %d slots)", took, shard.Moved(before, after))
}
