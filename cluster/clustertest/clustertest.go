// Package clustertest is the conformance suite every herd coordinator must
// pass against its real backend server. A backend's test calls Run with a
// Harness that makes coordinators connected to that server.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/remote"
)

// Harness adapts a backend to the suite.
type Harness struct {
	// NewCoordinator returns a coordinator on the backend under test. Every
	// call must join the same cluster; the suite closes what it gets.
	NewCoordinator func(t *testing.T) cluster.Coordinator
	// Register makes n a member through c; nil means c.RegisterRemote. For
	// platforms that register by themselves (Kubernetes) it first creates
	// what the platform would.
	Register func(t *testing.T, c cluster.Coordinator, n cluster.Node) error
	// Leave ends n's membership; nil means c.Close() (a graceful leave).
	// Either way the suite closes c at the end of the test.
	Leave func(t *testing.T, c cluster.Coordinator, n cluster.Node) error
	// SingleNode is true for backends that only ever show self (standalone).
	SingleNode bool
	// SharedIDs, when not empty, says why the backend cannot refuse a node
	// ID that another live process holds (Kubernetes: the platform names
	// each pod). Empty, the suite checks that a second process registering
	// a held ID at another address gets cluster.ErrDuplicateID.
	SharedIDs string
	// WriteMalformed writes, out of band, an entry into the backend path that
	// does not decode as a node. Nil for backends with no shared path.
	WriteMalformed func(t *testing.T)
	// Malformed reads a coordinator's malformed-entry counter.
	Malformed func(c cluster.Coordinator) uint64
	// PutForeign writes n's entry into the backend path out of band, as a
	// peer in another process would, with nothing in this process keeping
	// it there; DeleteForeign deletes such entries out of band, at once
	// where the backend can (an operator's cleanup, a wiped replica). With
	// both set, the suite checks protection mode on the real server.
	PutForeign    func(t *testing.T, n cluster.Node)
	DeleteForeign func(t *testing.T, nodes []cluster.Node)
	// Within bounds how long a change may take to reach a watcher; default 1s.
	Within time.Duration
	// Recovery, when set, gives the recovery test a server of its own that it
	// may kill and start again on the same data.
	Recovery func(t *testing.T) RecoveryTarget
	// RecoverWithin bounds how long after the restart every node must be
	// registered again and the watch deliver changes again; default 30s.
	RecoverWithin time.Duration
	// ResumeWithin, when set, bounds how long after a restart on the same
	// data, following an outage of several seconds (long enough for retry
	// backoffs to grow), a new node takes to reach every old node's watch.
	ResumeWithin time.Duration
	// Election, when set, runs the election section of the suite.
	Election *Election
	// GracefulLeave, when not empty, says why the backend's nodes cannot
	// mark themselves leaving before they go (Kubernetes: the platform
	// removes pods). Empty, the suite checks that long-lived nodes closing
	// together, more than half of the peers, leave a Manager's view at once
	// rather than being held by protection mode.
	GracefulLeave string
	// OwnershipTTL is the shard groups' OwnershipTTL in the slots section;
	// default 2s. A server whose writes can stall for seconds (the Nacos
	// server's store, just after a restart) needs more, or a graceful
	// Close cannot reach the leader within it and says so.
	OwnershipTTL time.Duration
}

// RecoveryTarget is a backend server the recovery test controls.
type RecoveryTarget struct {
	// NewCoordinator returns a coordinator on this server.
	NewCoordinator func(t *testing.T) cluster.Coordinator
	// Kill stops the server abruptly (SIGKILL where it is a process).
	Kill func()
	// Restart starts it again on the same data and returns once it answers.
	Restart func()
	// RestartEmpty, when set, starts it again on the same port with no data
	// (a rebuilt or restored-from-nothing server) and returns once it answers.
	RestartEmpty func()
	// Register, when set, replaces the harness's Register for this server.
	Register func(t *testing.T, c cluster.Coordinator, n cluster.Node) error
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	if h.Within == 0 {
		h.Within = time.Second
	}
	if h.RecoverWithin == 0 {
		h.RecoverWithin = 30 * time.Second
	}
	if h.Register == nil {
		h.Register = func(t *testing.T, c cluster.Coordinator, n cluster.Node) error { return c.RegisterRemote(ctx(t), n) }
	}
	if h.Leave == nil {
		h.Leave = func(_ *testing.T, c cluster.Coordinator, _ cluster.Node) error { return c.Close() }
	}
	t.Run("RegisterPutsSelfInView", func(t *testing.T) { testRegisterSelf(t, h) })
	t.Run("RefusesUnreachableAddress", func(t *testing.T) { testRefusesWildcard(t, h) })
	t.Run("ClosedCoordinator", func(t *testing.T) { testClosed(t, h) })
	if !h.SingleNode {
		t.Run("PeerAppearsThenLeaves", func(t *testing.T) { testPeerJoinLeave(t, h) })
		t.Run("RefusesHeldID", func(t *testing.T) {
			if h.SharedIDs != "" {
				t.Skip(h.SharedIDs)
			}
			testHeldID(t, h)
		})
		t.Run("RefusesHeldIDWithoutPause", func(t *testing.T) {
			if h.SharedIDs != "" {
				t.Skip(h.SharedIDs)
			}
			testHeldIDWithoutPause(t, h)
		})
	}
	if h.WriteMalformed != nil {
		t.Run("MalformedEntrySkippedAndCounted", func(t *testing.T) { testMalformed(t, h) })
	}
	if h.PutForeign != nil && h.DeleteForeign != nil {
		t.Run("ProtectionHoldsMassDeletion", func(t *testing.T) { testProtection(t, h) })
	}
	if !h.SingleNode {
		t.Run("ProtectionLetsChurnGo", func(t *testing.T) { testChurn(t, h) })
		t.Run("ProtectionLetsGracefulLeavesGo", func(t *testing.T) {
			if h.GracefulLeave != "" {
				t.Skip(h.GracefulLeave)
			}
			testGracefulLeaves(t, h)
		})
	}
	if h.Recovery != nil {
		t.Run("RecoversFromServerRestart", func(t *testing.T) { testRecovery(t, h) })
		t.Run("RecoversFromEmptyServer", func(t *testing.T) { testEmptyRecovery(t, h) })
	}
	if h.Election != nil {
		t.Run("Election", func(t *testing.T) { runElection(t, h) })
		t.Run("Slots", func(t *testing.T) { runSlots(t, h) })
	}
}

// discard is the remote.Client of a peer in the recovery test: nothing is
// sent, only the view is checked.
type discard struct{}

func (discard) Send(context.Context, string, []byte) error { return nil }
func (discard) Close() error                               { return nil }

func testRecovery(t *testing.T, h Harness) {
	target := h.Recovery(t)
	if target.Register != nil {
		h.Register = target.Register
	}
	a, b := target.NewCoordinator(t), target.NewCoordinator(t)
	closeOnCleanup(t, a)
	closeOnCleanup(t, b)
	na, nb := clusterwait.NewNode(), clusterwait.NewNode()
	if err := h.Register(t, a, na); err != nil {
		t.Fatal(err)
	}
	if err := h.Register(t, b, nb); err != nil {
		t.Fatal(err)
	}
	m, err := remote.NewManager(a, na, remote.NewServer(),
		remote.WithDialer(func(cluster.Node) (remote.Client, error) { return discard{}, nil }),
		remote.WithRefreshInterval(100*time.Millisecond), remote.WithErrorHandler(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The baseline is taken once a's own watch shows both nodes: a watch value
	// published before b joined may still reach the manager after its first
	// query saw both (a flicker the next push corrects), and must not be
	// mistaken for a change during the outage.
	w, wb := a.Watch(watchCtx(t)), b.Watch(watchCtx(t))
	clusterwait.WaitFor(t, w, h.Within, "both nodes in a's watch", func(ns []cluster.Node) bool { return clusterwait.Has(ns, na.ID) && clusterwait.Has(ns, nb.ID) })
	clusterwait.WaitUntil(t, h.Within, "the manager sees both nodes", func() bool { return m.Snapshot().Len() == 2 })
	time.Sleep(100 * time.Millisecond)
	before := m.Snapshot()
	if before.Len() != 2 {
		t.Fatalf("the manager's view did not settle on both nodes: %v", clusterwait.IDs(before.Nodes()))
	}

	// A restart on the same data loses no node: no view the Manager
	// publishes from here on may lack an old one.
	var shrank atomic.Value // string: the first view that lacked an old node
	views := m.Subscribe(watchCtx(t))
	go func() {
		for v := range views {
			if ns := v.Nodes(); !clusterwait.Has(ns, na.ID) || !clusterwait.Has(ns, nb.ID) {
				shrank.CompareAndSwap(nil, fmt.Sprintf("%v at %s", clusterwait.IDs(ns), time.Now().Format(time.StampMilli)))
			}
		}
	}()
	defer func() {
		if v := shrank.Load(); v != nil {
			t.Errorf("a restart on the same data shrank the Manager's view: %s (the old nodes are %s and %s)", v, na.ID, nb.ID)
		}
	}()

	killed := time.Now()
	target.Kill()
	clusterwait.WaitUntil(t, 10*time.Second, "a failed query reported during the outage", func() bool { return m.Err() != nil })
	// Down long enough for every retry loop's backoff to have grown.
	time.Sleep(time.Until(killed.Add(outage)))
	if got := m.Snapshot(); got != before {
		t.Fatalf("the view changed during the outage: %v, was %v", clusterwait.IDs(got.Nodes()), clusterwait.IDs(before.Nodes()))
	}

	restarted := time.Now()
	target.Restart()
	back := time.Now()
	// The newcomer joins through a fresh client as soon as the server takes
	// writes; how long the old node's watch then takes to show it is what
	// the old node's reconnection costs.
	nc := newcomer(t, h, target)
	joined := time.Now()
	all := func(ns []cluster.Node) bool {
		return clusterwait.Has(ns, na.ID) && clusterwait.Has(ns, nb.ID) && clusterwait.Has(ns, nc.ID)
	}
	got := clusterwait.WaitFor(t, w, h.RecoverWithin, "a node that joined after the restart", func(ns []cluster.Node) bool { return clusterwait.Has(ns, nc.ID) })
	seen := time.Since(joined)
	// Every old node must see it; b's watch is read second, so its figure
	// is at least a's.
	clusterwait.WaitFor(t, wb, h.RecoverWithin, "the newcomer in the other old node's watch", func(ns []cluster.Node) bool { return clusterwait.Has(ns, nc.ID) })
	seen = max(seen, time.Since(joined))
	// The old nodes' own registrations recover on their own clock (Consul:
	// their TTL checks); the watch must show them too, within the bound.
	if !all(got) {
		clusterwait.WaitFor(t, w, h.RecoverWithin, "the old nodes beside the newcomer", all)
	}
	clusterwait.WaitUntil(t, h.RecoverWithin, "both nodes registered again", queryHas(a, na, nb))
	clusterwait.WaitUntil(t, h.RecoverWithin, "the manager's view recovered", func() bool { return m.Snapshot().Len() == 3 && m.Err() == nil })
	t.Logf("after %s down: the server held a new node %s after it answered, and both old nodes' watches showed it %s later; recovered %s after the server answered (%s after the restart began)",
		back.Sub(killed).Round(time.Millisecond), joined.Sub(back).Round(time.Millisecond), seen.Round(time.Millisecond),
		time.Since(back).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	if h.ResumeWithin > 0 && seen > h.ResumeWithin {
		t.Errorf("the old nodes' watches showed a node registered after the restart %s after the server held it, want within %s", seen.Round(time.Millisecond), h.ResumeWithin)
	}
}

// outage is how long the recovery test keeps the server down.
const outage = 10 * time.Second

// testEmptyRecovery: the server comes back with no data. Every node must
// register again by itself, a newcomer must reach the others' watches, and
// the Manager's view must never lose more peers than protection mode (with
// its defaults) lets go at once: it holds the removals while the nodes come
// back. One peer may go and come back, since a single leave is never held.
func testEmptyRecovery(t *testing.T, h Harness) {
	target := h.Recovery(t)
	if target.RestartEmpty == nil {
		t.Skip("this harness's server cannot be restarted empty")
	}
	if target.Register != nil {
		h.Register = target.Register
	}
	const size = 4
	coords, nodes := make([]cluster.Coordinator, size), make([]cluster.Node, size)
	for i := range coords {
		coords[i], nodes[i] = target.NewCoordinator(t), clusterwait.NewNode()
		closeOnCleanup(t, coords[i])
		if err := h.Register(t, coords[i], nodes[i]); err != nil {
			t.Fatal(err)
		}
	}
	a := coords[0]
	allIn := func(ns []cluster.Node) bool { return hasAll(ns, nodes) }
	w := a.Watch(watchCtx(t))
	clusterwait.WaitFor(t, w, h.Within, "every node in a's watch", allIn)
	m, err := remote.NewManager(a, nodes[0], remote.NewServer(),
		remote.WithDialer(func(cluster.Node) (remote.Client, error) { return discard{}, nil }),
		remote.WithRefreshInterval(100*time.Millisecond), remote.WithErrorHandler(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	clusterwait.WaitUntil(t, h.Within, "the manager sees every node", func() bool { return m.Snapshot().Len() == size })

	// Every view the manager publishes from now on, and the smallest.
	views := m.Subscribe(watchCtx(t))
	smallest := make(chan int, 1)
	go func() {
		least := size
		for s := range views {
			least = min(least, s.Len())
		}
		smallest <- least
	}()

	target.Kill()
	clusterwait.WaitUntil(t, 10*time.Second, "a failed query reported during the outage", func() bool { return m.Err() != nil })
	restarted := time.Now()
	target.RestartEmpty()
	back := time.Now()
	clusterwait.WaitUntil(t, h.RecoverWithin, "every node registered again on the empty server", queryHas(a, nodes...))
	registeredAgain := time.Since(back)
	nc := newcomer(t, h, target)
	clusterwait.WaitFor(t, w, h.RecoverWithin, "the newcomer and every node in a's watch", func(ns []cluster.Node) bool { return allIn(ns) && clusterwait.Has(ns, nc.ID) })
	clusterwait.WaitUntil(t, h.RecoverWithin, "the manager's view recovered", func() bool { return m.Snapshot().Len() == size+1 && m.Err() == nil })
	m.Close()
	threshold := remote.DefaultProtectionThreshold // a variable: a constant 1.5 does not convert to int
	floor := size - int(threshold*float64(size-1))
	if least := <-smallest; least < floor {
		t.Fatalf("the manager's view fell to %d of %d nodes while the server came back empty; protection mode should have kept at least %d", least, size, floor)
	}
	t.Logf("every node registered again %s after the empty server answered; recovered %s after it (%s after the restart began)",
		registeredAgain.Round(time.Millisecond), time.Since(back).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
}

// testProtection: most entries vanish from the backend at once. The
// Manager (protection mode on, with the default threshold) must keep at
// least the share of peers that threshold protects, report that it holds,
// and let the removals go only once a query made after the confirm period
// still lacks them.
// churners is how many short-lived nodes testChurn starts and stops: with
// protection's default threshold, the sixth leave within the confirm
// period would be held if churn counted as loss.
const churners = 8

// testChurn: beside a stable core, short-lived nodes join and leave
// gracefully one after another, all within protection mode's confirm
// period; a Manager with the default protection drops each at once.
func testChurn(t *testing.T, h Harness) {
	var core []cluster.Node
	var coords []cluster.Coordinator
	for range 3 {
		c := h.NewCoordinator(t)
		closeOnCleanup(t, c)
		n := clusterwait.NewNode()
		if err := h.Register(t, c, n); err != nil {
			t.Fatal(err)
		}
		core, coords = append(core, n), append(coords, c)
	}
	m := viewOnly(t, coords[0], core[0])
	clusterwait.WaitUntil(t, h.Within, "the manager sees the core", func() bool { return hasAll(m.Snapshot().Nodes(), core) })
	// The backend's own view, read through the same coordinator: what the
	// Manager adds to the backend's latency is what protection would hold.
	w := coords[0].Watch(watchCtx(t))
	var worst time.Duration
	for i := range churners {
		c := h.NewCoordinator(t)
		closeOnCleanup(t, c)
		n := clusterwait.NewNode()
		if err := h.Register(t, c, n); err != nil {
			t.Fatal(err)
		}
		clusterwait.WaitFor(t, w, h.RecoverWithin, fmt.Sprintf("churner %d in the backend's view", i), func(ns []cluster.Node) bool { return clusterwait.Has(ns, n.ID) })
		clusterwait.WaitUntil(t, h.Within, fmt.Sprintf("churner %d in the manager's view", i), func() bool { return clusterwait.Has(m.Snapshot().Nodes(), n.ID) })
		if err := h.Leave(t, c, n); err != nil {
			t.Fatalf("churner %d leaving: %v", i, err)
		}
		// A leave gossip misses is found by failure detection instead, in
		// seconds: the backend's latency, not the Manager's.
		clusterwait.WaitFor(t, w, h.RecoverWithin, fmt.Sprintf("churner %d gone from the backend's view", i), func(ns []cluster.Node) bool { return !clusterwait.Has(ns, n.ID) })
		gone := time.Now()
		clusterwait.WaitUntil(t, h.Within, fmt.Sprintf("churner %d gone from the manager's view once the backend dropped it (after %d others; stats %+v, err %v)", i, i, m.Stats(), m.Err()), func() bool {
			return !clusterwait.Has(m.Snapshot().Nodes(), n.ID)
		})
		worst = max(worst, time.Since(gone))
	}
	if s := m.Stats(); s.Holds != 0 {
		t.Errorf("protection held removals during churn alone: %+v", s)
	}
	if !hasAll(m.Snapshot().Nodes(), core) {
		t.Errorf("the core left the view: %v", clusterwait.IDs(m.Snapshot().Nodes()))
	}
	t.Logf("%d churners each left the manager's view within %s of leaving the backend's", churners, worst.Round(time.Millisecond))
}

// testGracefulLeaves: long-lived nodes that close together, more than half
// of the peers, leave a Manager's view at once: each says it is leaving
// before it goes, and protection mode holds only nodes that vanish unsaid.
func testGracefulLeaves(t *testing.T, h Harness) {
	observer := h.NewCoordinator(t)
	closeOnCleanup(t, observer)
	self := clusterwait.NewNode()
	if err := h.Register(t, observer, self); err != nil {
		t.Fatal(err)
	}
	var peers []cluster.Node
	var coords []cluster.Coordinator
	for range 5 {
		c := h.NewCoordinator(t)
		closeOnCleanup(t, c)
		n := clusterwait.NewNode()
		if err := h.Register(t, c, n); err != nil {
			t.Fatal(err)
		}
		peers, coords = append(peers, n), append(coords, c)
	}
	// Started after every peer registered, the Manager knows them all as
	// long-lived: none of them is churn.
	w := observer.Watch(watchCtx(t))
	clusterwait.WaitFor(t, w, h.RecoverWithin, "every peer in the backend's view", func(ns []cluster.Node) bool { return hasAll(ns, peers) })
	m := viewOnly(t, observer, self)
	clusterwait.WaitUntil(t, h.Within, "the manager sees every peer", func() bool { return hasAll(m.Snapshot().Nodes(), peers) })
	total := len(m.Snapshot().Nodes()) - 1 // peers other tests left behind count too
	leavers := peers[:4]
	if float64(len(leavers)) <= remote.DefaultProtectionThreshold*float64(total) {
		t.Skipf("%d peers from earlier tests are still listed: 4 leaving is not more than half of %d", total-len(peers), total)
	}
	start := time.Now()
	var wg sync.WaitGroup
	took := make([]time.Duration, len(leavers))
	for i := range leavers {
		wg.Go(func() {
			if err := h.Leave(t, coords[i], leavers[i]); err != nil {
				t.Errorf("leaving gracefully: %v", err)
			}
			took[i] = time.Since(start).Round(time.Millisecond)
		})
	}
	wg.Wait()
	closed := time.Since(start)
	t.Logf("each Close returned after %v", took)
	clusterwait.WaitUntil(t, h.Within, fmt.Sprintf("the graceful leavers gone from the manager's view (stats %+v, err %v)", m.Stats(), m.Err()), func() bool {
		return !slices.ContainsFunc(m.Snapshot().Nodes(), func(n cluster.Node) bool { return clusterwait.Has(leavers, n.ID) })
	})
	if s := m.Stats(); s.Holds != 0 {
		t.Errorf("protection held graceful leaves: %+v", s)
	}
	if !hasAll(m.Snapshot().Nodes(), peers[4:]) {
		t.Errorf("the peer that stayed left the view: %v", clusterwait.IDs(m.Snapshot().Nodes()))
	}
	t.Logf("%d of %d peers closed together (Close took %s); all gone from the manager's view %s after the first Close began",
		len(leavers), total, closed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// viewOnly starts a Manager on c for self that dials nobody and reports
// nothing, for tests of the view alone; it closes with the test.
func viewOnly(t *testing.T, c cluster.Coordinator, self cluster.Node) *remote.Manager {
	t.Helper()
	m, err := remote.NewManager(c, self, remote.NewServer(),
		remote.WithDialer(func(cluster.Node) (remote.Client, error) { return discard{}, nil }),
		remote.WithErrorHandler(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func testProtection(t *testing.T, h Harness) {
	a := h.NewCoordinator(t)
	closeOnCleanup(t, a)
	self := clusterwait.NewNode()
	if err := h.Register(t, a, self); err != nil {
		t.Fatal(err)
	}
	w := a.Watch(watchCtx(t))
	// Nodes other tests left behind (pods stay after their coordinator
	// closes) are peers too: enough foreign entries are written that
	// deleting all but one of them is more than threshold of the peers.
	others := len(clusterwait.WaitFor(t, w, h.Within, "self in the watch", func(ns []cluster.Node) bool { return clusterwait.Has(ns, self.ID) })) - 1
	const confirm = 3 * time.Second
	threshold := remote.DefaultProtectionThreshold
	foreign := make([]cluster.Node, int((1+threshold*float64(others))/(1-threshold))+2)
	for i := range foreign {
		foreign[i] = clusterwait.NewNode()
		h.PutForeign(t, foreign[i])
	}
	gone, kept := foreign[1:], foreign[:1]
	clusterwait.WaitFor(t, w, h.Within, "self and every foreign entry in the watch", func(ns []cluster.Node) bool {
		return clusterwait.Has(ns, self.ID) && hasAll(ns, foreign)
	})
	m, err := remote.NewManager(a, self, remote.NewServer(),
		remote.WithDialer(func(cluster.Node) (remote.Client, error) { return discard{}, nil }),
		remote.WithProtection(threshold, confirm),
		// Not faster: client-go's rate limiter allows 5 requests a second.
		remote.WithRefreshInterval(500*time.Millisecond), remote.WithErrorHandler(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	clusterwait.WaitUntil(t, h.Within, "the manager sees every node", func() bool { return hasAll(m.Snapshot().Nodes(), foreign) })
	size := m.Snapshot().Len()
	floor := size - int(threshold*float64(size-1))

	var least atomic.Int64
	least.Store(int64(size))
	views := m.Subscribe(watchCtx(t))
	go func() {
		for v := range views {
			if int64(v.Len()) < least.Load() {
				least.Store(int64(v.Len()))
			}
		}
	}()

	deleted := time.Now()
	h.DeleteForeign(t, gone)
	clusterwait.WaitFor(t, w, h.Within, "the deletion in the watch", func(ns []cluster.Node) bool {
		return clusterwait.Has(ns, self.ID) && hasAll(ns, kept) && !hasAny(ns, gone)
	})
	clusterwait.WaitUntil(t, h.Within, "the manager holding removals", func() bool {
		s := m.Stats()
		return s.Holds > 0 && len(s.Held) > 0 && errors.Is(m.Err(), remote.ErrHoldingRemovals)
	})
	time.Sleep(time.Until(deleted.Add(confirm - 200*time.Millisecond)))
	if got := least.Load(); got < int64(floor) {
		t.Fatalf("the manager's view fell to %d of %d nodes before the confirm period ended; protection mode should have kept at least %d", got, size, floor)
	}
	defer func() {
		if t.Failed() {
			t.Logf("the manager's view %v, stats %+v, err %v", clusterwait.IDs(m.Snapshot().Nodes()), m.Stats(), m.Err())
		}
	}()
	clusterwait.WaitUntil(t, confirm+h.Within, "the removals confirmed by a later query", func() bool {
		ns := m.Snapshot().Nodes()
		return !hasAny(ns, gone) && hasAll(ns, kept) && len(m.Stats().Held) == 0 && m.Err() == nil
	})
	if took := time.Since(deleted); took < confirm {
		t.Fatalf("the removals applied after %s, before the confirm period of %s", took, confirm)
	}
}

func hasAll(nodes, want []cluster.Node) bool {
	for _, n := range want {
		if !clusterwait.Has(nodes, n.ID) {
			return false
		}
	}
	return true
}

func hasAny(nodes, want []cluster.Node) bool {
	for _, n := range want {
		if clusterwait.Has(nodes, n.ID) {
			return true
		}
	}
	return false
}

// queryHas reports whether a query of c, bounded to a second, lists every
// one of nodes.
func queryHas(c cluster.Coordinator, nodes ...cluster.Node) func() bool {
	return func() bool {
		qctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		got, err := c.QueryRemoteNodes(qctx)
		return err == nil && hasAll(got, nodes)
	}
}

// newcomer registers a new node through a new coordinator on target, and
// returns once that coordinator's own query lists it: the moment the server
// holds the node, whatever the old clients do. A server that has just
// restarted may be slow to take writes (or, like Consul's agent, take them
// locally and reach its catalog later): it retries within the bound.
func newcomer(t *testing.T, h Harness, target RecoveryTarget) cluster.Node {
	t.Helper()
	c := target.NewCoordinator(t)
	closeOnCleanup(t, c)
	n := clusterwait.NewNode()
	clusterwait.WaitUntil(t, h.RecoverWithin, "a newcomer registered after the restart", func() bool { return h.Register(t, c, n) == nil })
	clusterwait.WaitUntil(t, h.RecoverWithin, "the newcomer in its own coordinator's query", queryHas(c, n))
	return n
}

// watchCtx lives as long as the test: a watch must outlast any one bound.
func watchCtx(t *testing.T) context.Context {
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func closeOnCleanup(t *testing.T, c cluster.Coordinator) {
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

func testRegisterSelf(t *testing.T, h Harness) {
	c := h.NewCoordinator(t)
	closeOnCleanup(t, c)
	w := c.Watch(ctx(t))
	self := clusterwait.NewNode()
	if err := h.Register(t, c, self); err != nil {
		t.Fatalf("RegisterRemote: %v", err)
	}
	clusterwait.WaitFor(t, w, h.Within, "self marked as self", func(ns []cluster.Node) bool {
		return slices.ContainsFunc(ns, func(n cluster.Node) bool { return n.ID == self.ID && n.Self && n.Address == self.Address })
	})
	nodes, err := c.QueryRemoteNodes(ctx(t))
	if err != nil {
		t.Fatalf("QueryRemoteNodes: %v", err)
	}
	selves := 0
	for _, n := range nodes {
		if n.Self {
			selves++
			if n.ID != self.ID || n.Address != self.Address {
				t.Errorf("self in query = %+v, want %+v", n, self)
			}
		}
	}
	if selves != 1 {
		t.Fatalf("query %v has %d nodes marked self, want 1", clusterwait.IDs(nodes), selves)
	}
	if err := c.RegisterRemote(ctx(t), clusterwait.NewNode()); err == nil && !h.SingleNode {
		t.Error("a second RegisterRemote on one coordinator was accepted")
	}
}

func testRefusesWildcard(t *testing.T, h Harness) {
	c := h.NewCoordinator(t)
	closeOnCleanup(t, c)
	for _, host := range []string{"0.0.0.0", "::", ""} {
		n := clusterwait.NewNode()
		n.Address.Host = host
		if err := c.RegisterRemote(ctx(t), n); !errors.Is(err, cluster.ErrUnspecifiedHost) {
			t.Errorf("RegisterRemote with host %q: err = %v, want ErrUnspecifiedHost", host, err)
		}
	}
}

func testClosed(t *testing.T, h Harness) {
	c := h.NewCoordinator(t)
	w := c.Watch(ctx(t))
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	timeout := time.After(h.Within)
	for open := true; open; {
		select {
		case _, open = <-w:
		case <-timeout:
			t.Fatal("watch channel not closed by Close")
		}
	}
	if err := c.RegisterRemote(ctx(t), clusterwait.NewNode()); err == nil {
		t.Error("RegisterRemote after Close succeeded")
	}
}

func testPeerJoinLeave(t *testing.T, h Harness) {
	a, b := h.NewCoordinator(t), h.NewCoordinator(t)
	closeOnCleanup(t, a)
	na, nb := clusterwait.NewNode(), clusterwait.NewNode()
	if err := h.Register(t, a, na); err != nil {
		t.Fatal(err)
	}
	w := a.Watch(ctx(t))
	clusterwait.WaitFor(t, w, h.Within, "self", func(ns []cluster.Node) bool { return clusterwait.Has(ns, na.ID) })
	closeOnCleanup(t, b)
	if err := h.Register(t, b, nb); err != nil {
		t.Fatal(err)
	}
	got := clusterwait.WaitFor(t, w, h.Within, fmt.Sprintf("peer %s", nb.ID), func(ns []cluster.Node) bool { return clusterwait.Has(ns, nb.ID) })
	for _, n := range got {
		if n.ID == nb.ID && n.Self {
			t.Errorf("peer %s marked as self in a's view", nb.ID)
		}
	}
	if err := h.Leave(t, b, nb); err != nil {
		t.Fatalf("leaving: %v", err)
	}
	clusterwait.WaitFor(t, w, h.Within, "peer gone after its Close", func(ns []cluster.Node) bool { return !clusterwait.Has(ns, nb.ID) && clusterwait.Has(ns, na.ID) })
}

// testHeldID: a second process registering a node ID that a live one holds,
// at another address, is refused with cluster.ErrDuplicateID naming both
// addresses, and the holder keeps its entry; once the holder has left, the
// ID is free again.
func testHeldID(t *testing.T, h Harness) {
	holder, twin := h.NewCoordinator(t), h.NewCoordinator(t)
	closeOnCleanup(t, holder)
	closeOnCleanup(t, twin)
	n := clusterwait.NewNode()
	if err := h.Register(t, holder, n); err != nil {
		t.Fatal(err)
	}
	w := twin.Watch(ctx(t))
	at := func(a cluster.Address) func([]cluster.Node) bool { // n's ID at address a
		return func(ns []cluster.Node) bool {
			i := slices.IndexFunc(ns, func(m cluster.Node) bool { return m.ID == n.ID })
			return i >= 0 && ns[i].Address == a
		}
	}
	clusterwait.WaitFor(t, w, h.Within, "the holder", at(n.Address))

	impostor := n
	impostor.Address = clusterwait.NewNode().Address
	err := h.Register(t, twin, impostor)
	if !errors.Is(err, cluster.ErrDuplicateID) {
		t.Fatalf("registering ID %s, held by a live process at %s, from %s: %v; want an error wrapping cluster.ErrDuplicateID", n.ID, n.Address, impostor.Address, err)
	}
	if msg := err.Error(); !strings.Contains(msg, n.Address.String()) || !strings.Contains(msg, impostor.Address.String()) {
		t.Errorf("the error does not name both addresses (%s, %s): %v", n.Address, impostor.Address, err)
	}
	clusterwait.Keeps(t, w, 500*time.Millisecond, "the holder's entry at its own address", at(n.Address))

	if err := h.Leave(t, holder, n); err != nil {
		t.Fatalf("leaving: %v", err)
	}
	clusterwait.WaitFor(t, w, h.Within, "the holder gone", func(ns []cluster.Node) bool { return !clusterwait.Has(ns, n.ID) })
	if err := h.Register(t, twin, impostor); err != nil {
		t.Fatalf("registering the ID once its holder left: %v", err)
	}
	clusterwait.WaitFor(t, w, h.Within, "the ID at its new address", at(impostor.Address))
}

// testHeldIDWithoutPause is what a program does: make a coordinator and
// register at once, the holder and then the twin, with no wait for either
// to have learnt of the other.
func testHeldIDWithoutPause(t *testing.T, h Harness) {
	n := clusterwait.NewNode()
	holder := h.NewCoordinator(t)
	closeOnCleanup(t, holder)
	if err := h.Register(t, holder, n); err != nil {
		t.Fatal(err)
	}
	twin := h.NewCoordinator(t)
	closeOnCleanup(t, twin)
	impostor := n
	impostor.Address = clusterwait.NewNode().Address
	if err := h.Register(t, twin, impostor); !errors.Is(err, cluster.ErrDuplicateID) {
		t.Fatalf("registering ID %s right after a live process at %s took it, from %s: %v; want an error wrapping cluster.ErrDuplicateID", n.ID, n.Address, impostor.Address, err)
	}
	w := twin.Watch(ctx(t))
	clusterwait.Keeps(t, w, 500*time.Millisecond, "the holder's entry at its own address, and no other", func(ns []cluster.Node) bool {
		i := slices.IndexFunc(ns, func(m cluster.Node) bool { return m.ID == n.ID })
		return i < 0 || ns[i].Address == n.Address
	})
}

func testMalformed(t *testing.T, h Harness) {
	c := h.NewCoordinator(t)
	closeOnCleanup(t, c)
	peer := h.NewCoordinator(t)
	closeOnCleanup(t, peer)
	self, other := clusterwait.NewNode(), clusterwait.NewNode()
	if err := h.Register(t, c, self); err != nil {
		t.Fatal(err)
	}
	if err := h.Register(t, peer, other); err != nil {
		t.Fatal(err)
	}
	w := c.Watch(ctx(t))
	baseline := clusterwait.WaitFor(t, w, h.Within, "both nodes", func(ns []cluster.Node) bool { return clusterwait.Has(ns, self.ID) && clusterwait.Has(ns, other.ID) })
	before := h.Malformed(c)
	h.WriteMalformed(t)
	deadline := time.Now().Add(h.Within)
	for h.Malformed(c) == before {
		if time.Now().After(deadline) {
			t.Fatalf("malformed entry not counted within %s", h.Within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	nodes, err := c.QueryRemoteNodes(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	// The view is what it was: both nodes, and nothing the malformed entry
	// added (nodes that were there before may have left meanwhile).
	check := func(how string, nodes []cluster.Node) {
		t.Helper()
		if !clusterwait.Has(nodes, self.ID) || !clusterwait.Has(nodes, other.ID) {
			t.Fatalf("%s after a malformed entry = %v, want both %s and %s", how, clusterwait.IDs(nodes), self.ID, other.ID)
		}
		for _, n := range nodes {
			if !clusterwait.Has(baseline, n.ID) {
				t.Errorf("%s after a malformed entry holds %s (%+v), which was not a member before", how, n.ID, n)
			}
			if err := n.Validate(); err != nil {
				t.Errorf("%s holds an invalid node: %v", how, err)
			}
		}
	}
	check("the query", nodes)
	latest := baseline
	for drained := false; !drained; { // the watch's newest list, once pushes settle
		select {
		case ns := <-w:
			latest = ns
		case <-time.After(200 * time.Millisecond):
			drained = true
		}
	}
	check("the watch", latest)
}
