package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/selector"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeMembership is a unit-test stand-in for a coordinator; the real
// coordinators are exercised by the etcd tests and the demo.
type fakeMembership struct {
	mu      sync.Mutex
	nodes   []cluster.Node
	err     error
	queries atomic.Int64
	watch   chan []cluster.Node
}

func newFake(nodes ...cluster.Node) *fakeMembership {
	return &fakeMembership{nodes: nodes, watch: make(chan []cluster.Node, 16)}
}

func (f *fakeMembership) QueryRemoteNodes(context.Context) ([]cluster.Node, error) {
	f.queries.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]cluster.Node(nil), f.nodes...), f.err
}

func (f *fakeMembership) Watch(ctx context.Context) <-chan []cluster.Node {
	out := make(chan []cluster.Node)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-f.watch:
				select {
				case out <- n:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

func (f *fakeMembership) set(nodes []cluster.Node, err error) {
	f.mu.Lock()
	f.nodes, f.err = nodes, err
	f.mu.Unlock()
}

type fakeClient struct {
	node   cluster.Node
	closed atomic.Bool
}

func (c *fakeClient) Send(context.Context, string, []byte) error { return nil }
func (c *fakeClient) Close() error                               { c.closed.Store(true); return nil }

type dialLog struct {
	mu      sync.Mutex
	clients map[string]*fakeClient
	dials   int
	fail    map[string]bool
}

func (d *dialLog) dial(n cluster.Node) (remote.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail[n.ID] {
		return nil, errors.New("refused")
	}
	d.dials++
	c := &fakeClient{node: n}
	if d.clients == nil {
		d.clients = map[string]*fakeClient{}
	}
	d.clients[n.ID] = c
	return c, nil
}

func (d *dialLog) client(id string) *fakeClient {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.clients[id]
}

func (d *dialLog) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials
}

func node(id, host string, port int) cluster.Node {
	return cluster.Node{ID: id, Address: cluster.Address{Host: host, Port: port}}
}

var self = node("self", "10.0.0.5", 11800)

func newManager(t *testing.T, src remote.Membership, opts ...remote.ManagerOption) (*remote.Manager, *dialLog) {
	t.Helper()
	return newManagerDialing(t, src, &dialLog{}, opts...)
}

// newManagerDialing starts a manager that dials through d, which must be
// fully set up: the manager's first refresh may dial at once.
func newManagerDialing(t *testing.T, src remote.Membership, d *dialLog, opts ...remote.ManagerOption) (*remote.Manager, *dialLog) {
	t.Helper()
	opts = append([]remote.ManagerOption{remote.WithDialer(d.dial), remote.WithRefreshInterval(time.Hour), remote.WithErrorHandler(func(error) {})}, opts...)
	m, err := remote.NewManager(src, self, remote.NewServer(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, d
}

func addrs(s *remote.Snapshot) []string {
	out := make([]string, s.Len())
	for i := range out {
		n := s.Node(i)
		out[i] = n.ID + "=" + n.Address.String()
	}
	return out
}

func TestSnapshotDedupesSortsAndKeepsSelf(t *testing.T) {
	src := newFake(
		node("c", "10.0.0.9", 1),
		node("a", "10.0.0.1", 1),
		node("a-dup", "10.0.0.1", 1),     // same address: first wins
		node("stale", "10.0.0.5", 11800), // self's address under an old ID: self wins
		node("b", "10.0.0.10", 1),
	)
	m, _ := newManager(t, src)
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(addrs(m.Snapshot()))
	// Sorted by the "host:port" string, as SkyWalking sorts, so 10.0.0.10:1 < 10.0.0.1:1.
	want := "[b=10.0.0.10:1 a=10.0.0.1:1 self=10.0.0.5:11800 c=10.0.0.9:1]"
	if got != want {
		t.Fatalf("view = %s\nwant  %s", got, want)
	}
	s := m.Snapshot()
	for i := 0; i < s.Len(); i++ {
		if s.Node(i).Self != (s.ID(i) == "self") {
			t.Errorf("node %s Self = %v", s.ID(i), s.Node(i).Self)
		}
	}
	if _, ok := s.Client(2).(*remote.SelfClient); !ok {
		t.Errorf("self's client is %T, want *remote.SelfClient", s.Client(2))
	}
}

func TestDiffReusesDialsAndCloses(t *testing.T) {
	a, b, c := node("a", "10.0.0.1", 1), node("b", "10.0.0.2", 1), node("c", "10.0.0.3", 1)
	src := newFake(a, b)
	m, d := newManager(t, src)
	_ = m.Refresh(context.Background())
	first := m.Snapshot()
	clientA := d.client("a")

	src.set([]cluster.Node{a, c}, nil)
	_ = m.Refresh(context.Background())
	s := m.Snapshot()
	if s.Version != first.Version+1 {
		t.Fatalf("version %d → %d", first.Version, s.Version)
	}
	if fmt.Sprint(ids(s.Added)) != "[c]" || fmt.Sprint(ids(s.Removed)) != "[b]" {
		t.Fatalf("added %v removed %v", ids(s.Added), ids(s.Removed))
	}
	if s.Client(0) != remote.Client(clientA) {
		t.Error("client for unchanged node a was not reused")
	}
	if n := d.count(); n != 3 {
		t.Errorf("dials = %d, want 3 (a, b, c)", n)
	}
	deadline := time.Now().Add(time.Second)
	for !d.client("b").closed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("removed node's client not closed")
		}
		time.Sleep(time.Millisecond)
	}
	// The old snapshot is untouched: readers holding it see a consistent view.
	if fmt.Sprint(addrs(first)) != "[a=10.0.0.1:1 b=10.0.0.2:1 self=10.0.0.5:11800]" {
		t.Fatalf("old snapshot changed: %v", addrs(first))
	}
	// Same answer again: no new version.
	_ = m.Refresh(context.Background())
	if m.Snapshot() != s {
		t.Error("an unchanged answer published a new snapshot")
	}
	// Same ID at a new address: a new client.
	src.set([]cluster.Node{node("a", "10.0.0.7", 1), c}, nil)
	_ = m.Refresh(context.Background())
	if got := ids(m.Snapshot().Added); fmt.Sprint(got) != "[a]" {
		t.Fatalf("moved node: added %v", got)
	}
}

func ids(nodes []cluster.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

func TestFailedQueryKeepsLastView(t *testing.T) {
	src := newFake(node("a", "10.0.0.1", 1))
	var reported []error
	var mu sync.Mutex
	m, _ := newManager(t, src, remote.WithErrorHandler(func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }))
	_ = m.Refresh(context.Background())
	before := m.Snapshot()
	src.set(nil, errors.New("backend down"))
	if err := m.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh hid the query error")
	}
	if m.Snapshot() != before {
		t.Fatal("a failed query changed the view")
	}
	if m.Err() == nil {
		t.Fatal("Err() is nil after a failed query")
	}
	mu.Lock()
	n := len(reported)
	mu.Unlock()
	if n == 0 {
		t.Fatal("error handler not called")
	}
	src.set([]cluster.Node{node("a", "10.0.0.1", 1)}, nil)
	_ = m.Refresh(context.Background())
	if m.Err() != nil {
		t.Fatalf("Err() = %v after a successful query", m.Err())
	}
}

func TestEmptyAnswerPolicies(t *testing.T) {
	a := node("a", "10.0.0.1", 1)
	t.Run("KeepLastView", func(t *testing.T) {
		src := newFake(a)
		m, _ := newManager(t, src)
		_ = m.Refresh(context.Background())
		src.set([]cluster.Node{}, nil)
		if err := m.Refresh(context.Background()); !errors.Is(err, remote.ErrEmptyAnswer) {
			t.Fatalf("err = %v, want ErrEmptyAnswer", err)
		}
		if m.Snapshot().Len() != 2 {
			t.Fatalf("view = %v, want a and self kept", addrs(m.Snapshot()))
		}
	})
	// A fresh cluster: the backend answers empty (by query and by watch)
	// until self's registration shows. Nothing is kept that the answer would
	// drop, so nothing is reported.
	t.Run("KeepLastViewFreshClusterIsSilent", func(t *testing.T) {
		src := newFake()
		var reported atomic.Int64
		m, _ := newManager(t, src, remote.WithErrorHandler(func(error) { reported.Add(1) }))
		src.watch <- []cluster.Node{}
		if err := m.Refresh(context.Background()); err != nil {
			t.Fatalf("Refresh = %v on a healthy, fresh cluster", err)
		}
		src.watch <- []cluster.Node{}
		if err := m.Refresh(context.Background()); err != nil || m.Err() != nil || reported.Load() != 0 {
			t.Fatalf("Refresh = %v, Err() = %v, %d reports; want none on a healthy, fresh cluster", err, m.Err(), reported.Load())
		}
		if m.Snapshot().Len() != 1 {
			t.Fatalf("view = %v, want self", addrs(m.Snapshot()))
		}
	})
	t.Run("AcceptEmpty", func(t *testing.T) {
		src := newFake(a)
		m, _ := newManager(t, src, remote.WithEmptyPolicy(remote.AcceptEmpty))
		_ = m.Refresh(context.Background())
		src.set([]cluster.Node{}, nil)
		if err := m.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(addrs(m.Snapshot())) != "[self=10.0.0.5:11800]" {
			t.Fatalf("view = %v, want self alone", addrs(m.Snapshot()))
		}
	})
}

func TestDialFailureLeavesNodeOutAndReports(t *testing.T) {
	src := newFake(node("a", "10.0.0.1", 1), node("bad", "10.0.0.2", 1))
	m, d := newManagerDialing(t, src, &dialLog{fail: map[string]bool{"bad": true}})
	if err := m.Refresh(context.Background()); err == nil {
		t.Fatal("dial failure not reported")
	}
	if fmt.Sprint(ids(m.Snapshot().Nodes())) != "[a self]" {
		t.Fatalf("view = %v", addrs(m.Snapshot()))
	}
	d.mu.Lock()
	d.fail = nil
	d.mu.Unlock()
	_ = m.Refresh(context.Background())
	if m.Snapshot().Len() != 3 {
		t.Fatalf("node not added once dialable: %v", addrs(m.Snapshot()))
	}
}

func TestWatchPushesAndSubscribersSeeIt(t *testing.T) {
	src := newFake()
	m, _ := newManager(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	views := m.Subscribe(ctx)
	src.watch <- []cluster.Node{node("a", "10.0.0.1", 1)}
	timeout := time.After(2 * time.Second)
	for {
		select {
		case s := <-views:
			if s.Len() == 2 {
				return
			}
		case <-timeout:
			t.Fatalf("pushed node not in a snapshot; view %v", addrs(m.Snapshot()))
		}
	}
}

func TestPeriodicQueryIsASafetyNet(t *testing.T) {
	src := newFake(node("a", "10.0.0.1", 1))
	m, _ := newManager(t, src, remote.WithRefreshInterval(20*time.Millisecond))
	deadline := time.Now().Add(2 * time.Second)
	for m.Snapshot().Len() != 2 || src.queries.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("queries = %d, view %v", src.queries.Load(), addrs(m.Snapshot()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewManagerRefusesBadInput(t *testing.T) {
	bad := self
	bad.Address.Host = "0.0.0.0"
	if _, err := remote.NewManager(newFake(), bad, remote.NewServer()); !errors.Is(err, cluster.ErrUnspecifiedHost) {
		t.Errorf("wildcard self: %v", err)
	}
	if _, err := remote.NewManager(nil, self, remote.NewServer()); err == nil {
		t.Error("nil membership accepted")
	}
	if _, err := remote.NewManager(newFake(), self, remote.NewServer(), remote.WithRefreshInterval(-1)); err == nil {
		t.Error("negative refresh accepted")
	}
	if _, err := remote.NewManager(newFake(), self, remote.NewServer(), remote.WithRefreshInterval(0)); err == nil {
		t.Error("zero refresh accepted")
	}
}

func TestSenderRoutesBySelector(t *testing.T) {
	srv := remote.NewServer()
	var got atomic.Int64
	if err := srv.Handle("w", remote.HandlerFunc(func(context.Context, []byte) { got.Add(1) })); err != nil {
		t.Fatal(err)
	}
	m, err := remote.NewManager(newFake(), self, srv, remote.WithRefreshInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := remote.NewSender(m)
	for k := int32(-5); k < 5; k++ {
		if err := s.Send(context.Background(), "w", k, []byte("x"), selector.HashCode{}); err != nil {
			t.Fatal(err)
		}
	}
	if got.Load() != 10 {
		t.Fatalf("self handler got %d, want 10", got.Load())
	}
	if err := s.Send(context.Background(), "nobody", 1, nil, selector.HashCode{}); !errors.Is(err, remote.ErrUnknownWorker) {
		t.Fatalf("unknown worker: %v", err)
	}
	if srv.Stats().UnknownWorker != 1 {
		t.Fatalf("unknown worker not counted: %+v", srv.Stats())
	}
}

// numberedNodes returns n peers, n0000 at 10.1.0.0 onwards, 250 to a /24.
func numberedNodes(n int) []cluster.Node {
	nodes := make([]cluster.Node, n)
	for i := range nodes {
		nodes[i] = node(fmt.Sprintf("n%04d", i), fmt.Sprintf("10.1.%d.%d", i/250, i%250), 11800)
	}
	return nodes
}

// BenchmarkManagerRefresh1000NodesUnchanged: the periodic query of a quiet
// cluster.
func BenchmarkManagerRefresh1000NodesUnchanged(b *testing.B) {
	nodes := numberedNodes(1000)
	d := &dialLog{}
	m, err := remote.NewManager(newFake(nodes...), self, remote.NewServer(), remote.WithDialer(d.dial), remote.WithRefreshInterval(time.Hour), remote.WithErrorHandler(func(error) {}))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkManagerRefresh1000Nodes: every refresh one node leaves and
// another joins (or back).
func BenchmarkManagerRefresh1000Nodes(b *testing.B) {
	nodes := numberedNodes(1000)
	churned := append([]cluster.Node(nil), nodes...)
	churned[500] = node("n-new", "10.9.9.9", 11800) // one leaves, one joins
	src := newFake(nodes...)
	d := &dialLog{}
	m, err := remote.NewManager(src, self, remote.NewServer(), remote.WithDialer(d.dial), remote.WithRefreshInterval(time.Hour), remote.WithErrorHandler(func(error) {}))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	_ = m.Refresh(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			src.set(churned, nil)
		} else {
			src.set(nodes, nil)
		}
		if err := m.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// slowMembership answers queries only when released, to hold one in flight.
type slowMembership struct {
	*fakeMembership
	started chan struct{}
	release chan []cluster.Node
}

func (s *slowMembership) QueryRemoteNodes(ctx context.Context) ([]cluster.Node, error) {
	s.started <- struct{}{}
	select {
	case nodes := <-s.release:
		return nodes, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestStaleQueryAnswerDoesNotRevertAWatchUpdate: a query that began before a
// watch push and ends after it must not put the older view back.
func TestStaleQueryAnswerDoesNotRevertAWatchUpdate(t *testing.T) {
	a, b := node("a", "10.0.0.1", 1), node("b", "10.0.0.2", 1)
	src := &slowMembership{fakeMembership: newFake(), started: make(chan struct{}, 1), release: make(chan []cluster.Node)}
	go func() { <-src.started; src.release <- nil }() // NewManager's own first query
	m, _ := newManagerDialing(t, src, &dialLog{})

	refreshed := make(chan error, 1)
	go func() { refreshed <- m.Refresh(context.Background()) }()
	<-src.started // the query is in flight, with the old world [a]

	src.watch <- []cluster.Node{a, b} // a newer update arrives and is applied
	deadline := time.Now().Add(2 * time.Second)
	for m.Snapshot().Len() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("watch update not applied: %v", addrs(m.Snapshot()))
		}
		time.Sleep(time.Millisecond)
	}
	src.release <- []cluster.Node{a} // the stale answer
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ids(m.Snapshot().Nodes())); got != "[a b self]" {
		t.Fatalf("view = %s after a stale answer; want the watch's [a b self]", got)
	}
}

// TestAnIDAtTwoAddressesKeepsTheLowerOne: whatever order answers list them
// in, every Manager keeps the same one.
func TestAnIDAtTwoAddressesKeepsTheLowerOne(t *testing.T) {
	low, high := node("a", "10.0.0.1", 11800), node("a", "10.0.0.2", 11800)
	for _, order := range [][]cluster.Node{{low, high}, {high, low}} {
		m, _ := newManager(t, newFake(order...))
		if got := addrs(m.Snapshot()); !slices.Equal(got, []string{"a=10.0.0.1:11800", "self=10.0.0.5:11800"}) {
			t.Fatalf("answer %v: view %v, want a at its lower address and self", ids(order), got)
		}
	}
}

// TestRefreshCostDoesNotGrowWithAQuietView: an unchanged answer is
// recognised without allocating per node, and a one-node change allocates
// for that node, not for every node.
func TestRefreshCostDoesNotGrowWithAQuietView(t *testing.T) {
	allocs := func(size int, change bool) float64 {
		nodes := numberedNodes(size)
		churned := slices.Clone(nodes)
		churned[size/2] = node("n-new", "10.9.9.9", 11800)
		src := newFake(nodes...)
		m, _ := newManager(t, src)
		flip := false
		return testing.AllocsPerRun(20, func() {
			if change {
				flip = !flip
				if flip {
					src.set(churned, nil)
				} else {
					src.set(nodes, nil)
				}
			}
			if err := m.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := allocs(10, false), allocs(1000, false)
	if large > small {
		t.Errorf("an unchanged answer: %.0f allocations with 1,000 nodes, %.0f with 10; want no more for more nodes", large, small)
	}
	small, large = allocs(10, true), allocs(1000, true)
	if large > small+4 {
		t.Errorf("a one-node change: %.0f allocations with 1,000 nodes, %.0f with 10; want about the same", large, small)
	}
	t.Logf("allocations per refresh: unchanged %.0f; one change %.0f (10 nodes) and %.0f (1,000 nodes)", allocs(1000, false), small, large)
}

// TestAnUnchangedAnswerIsRecognisedInPlace: refreshing a quiet view of
// 1,000 nodes allocates no more bytes, beyond the answer the source hands
// over, than refreshing one of 10. The answer is checked against the view
// where it lies; normalising it instead (three slices as long as the
// answer, 160 KB here) costs the same number of allocations, so only their
// size tells the two paths apart.
func TestAnUnchangedAnswerIsRecognisedInPlace(t *testing.T) {
	ctx := context.Background()
	perCall := func(f func()) float64 {
		const calls = 50
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range calls {
			f()
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / calls
	}
	bytesPerRefresh := func(size int) float64 {
		nodes := numberedNodes(size)
		src := newFake(nodes...)
		m, _ := newManager(t, src)
		refresh := perCall(func() {
			if err := m.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		})
		answer := perCall(func() { _, _ = src.QueryRemoteNodes(ctx) })
		return refresh - answer
	}
	small, large := bytesPerRefresh(10), bytesPerRefresh(1000)
	if large > small+4096 {
		t.Errorf("an unchanged answer: %.0f bytes per refresh with 1,000 nodes, %.0f with 10 (the answer's own bytes taken out); want about the same", large, small)
	}
	t.Logf("bytes per refresh of an unchanged view, beyond the answer: %.0f (10 nodes), %.0f (1,000 nodes)", small, large)
}

// plainPeers is a view with nothing prepared, for comparison.
type plainPeers []string

func (p plainPeers) Len() int        { return len(p) }
func (p plainPeers) ID(i int) string { return p[i] }

// TestSnapshotPreparesConsistentAndMaglev: a snapshot's kept ID hashes and
// Maglev table route every key as the selectors do from the IDs alone, and
// Maglev on a snapshot allocates nothing, before and after a change.
func TestSnapshotPreparesConsistentAndMaglev(t *testing.T) {
	src := newFake(node("a", "10.0.0.1", 11800), node("b", "10.0.0.2", 11800), node("c", "10.0.0.3", 11800))
	m, _ := newManager(t, src)
	check := func() {
		t.Helper()
		snap := m.Snapshot()
		plain := make(plainPeers, snap.Len())
		for i := range plain {
			plain[i] = snap.ID(i)
		}
		table := selector.NewMaglevTable(plain)
		for k := int32(-500); k < 500; k++ {
			i, _ := selector.Consistent{}.Select(k, snap)
			j, _ := selector.Consistent{}.Select(k, plain)
			if i != j {
				t.Fatalf("Consistent: key %d goes to %d on the snapshot, %d from the IDs", k, i, j)
			}
			if i, _ := (selector.Maglev{}).Select(k, snap); i != table.Lookup(k) {
				t.Fatalf("Maglev: key %d goes to %d on the snapshot, %d from the IDs", k, i, table.Lookup(k))
			}
		}
		if a := testing.AllocsPerRun(50, func() { _, _ = selector.Maglev{}.Select(7, snap) }); a != 0 {
			t.Errorf("Maglev on a snapshot allocates %.0f times", a)
		}
	}
	check()
	src.set([]cluster.Node{node("a", "10.0.0.1", 11800), node("b", "10.0.0.2", 11800), node("d", "10.0.0.4", 11800)}, nil) // c leaves, d joins
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	check()
}

// TestAnIDMovingToALowerAddressIsKeptOnce: a node of the view listed again
// at its old address and at a new, lower one keeps the lower one, whichever
// the answer lists first.
func TestAnIDMovingToALowerAddressIsKeptOnce(t *testing.T) {
	old, moved := node("a", "10.0.0.3", 11800), node("a", "10.0.0.1", 11800)
	for _, answer := range [][]cluster.Node{{old, moved}, {moved, old}} {
		src := newFake(old)
		m, _ := newManager(t, src)
		src.set(answer, nil)
		if err := m.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := addrs(m.Snapshot()); !slices.Equal(got, []string{"a=10.0.0.1:11800", "self=10.0.0.5:11800"}) {
			t.Fatalf("answer %v: view %v, want a at 10.0.0.1 once", answer, got)
		}
	}
}

// loggingMembership is a membership source that keeps a logger, as every
// herd coordinator does.
type loggingMembership struct {
	*fakeMembership
	logger *slog.Logger
}

func (l loggingMembership) Logger() *slog.Logger { return l.logger }

// The logger given once to the coordinator is the Manager's too, unless
// the Manager is given its own.
func TestManagerInheritsTheCoordinatorsLogger(t *testing.T) {
	for _, own := range []bool{false, true} {
		var inherited, given bytes.Buffer
		src := loggingMembership{newFake(node("a", "10.0.0.1", 1)), slog.New(slog.NewTextHandler(&inherited, nil))}
		var opts []remote.ManagerOption
		if own {
			opts = append(opts, remote.WithLogger(slog.New(slog.NewTextHandler(&given, nil))))
		}
		m, err := remote.NewManager(src, self, remote.NewServer(), append([]remote.ManagerOption{remote.WithDialer((&dialLog{}).dial), remote.WithRefreshInterval(time.Hour)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		src.set(nil, errors.New("backend down"))
		_ = m.Refresh(context.Background())
		want, other := &inherited, &given
		if own {
			want, other = &given, &inherited
		}
		if !strings.Contains(want.String(), "backend down") || other.Len() != 0 {
			t.Errorf("own logger %v: the refresh error went to %q, not %q", own, other.String(), want.String())
		}
	}
}
