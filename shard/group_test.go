package shard

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/etcd"
	"github.com/herd-go/herd/internal/embedetcd"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
)

func TestRecordRoundTrip(t *testing.T) {
	s := newState(14)
	s.term, s.epoch = 3, 7
	copy(s.owners, []string{"a", "a", "", "b", "b", "b", "", "c", "a", "a", "", "", "", ""})
	s.from[2], s.revokedAt[2] = "c", 7
	s.from[6], s.revokedAt[6] = "d", 5
	// Adjacent moving slots: another node's, then the same node's of another
	// epoch, then one that continues that run.
	s.from[10], s.revokedAt[10] = "d", 5
	s.from[11], s.revokedAt[11] = "e", 5
	s.from[12], s.revokedAt[12] = "e", 6
	s.from[13], s.revokedAt[13] = "e", 6
	s.acks["a"], s.acks["d"] = 7, left
	got, err := decode(encode(s))
	if err != nil {
		t.Fatal(err)
	}
	if got.term != 3 || got.epoch != 7 || !slices.Equal(got.owners, s.owners) || !slices.Equal(got.from, s.from) ||
		!slices.Equal(got.revokedAt, s.revokedAt) || got.acks["a"] != 7 || got.acks["d"] != left {
		t.Fatalf("round trip changed the state:\n%+v\n%+v", s, got)
	}
}

// TestDecodeAcceptsTheBounds: tables of one slot and of MaxSlots are valid.
func TestDecodeAcceptsTheBounds(t *testing.T) {
	for _, n := range []int{1, MaxSlots} {
		s := newState(n)
		s.owners[0], s.owners[n-1] = "a", "a"
		got, err := decode(encode(s))
		if err != nil || len(got.owners) != n || got.owners[n-1] != "a" {
			t.Errorf("a table of %d slots: decoded %d slots, err %v", n, len(got.owners), err)
		}
	}
}

func TestDecodeRefusesMalformed(t *testing.T) {
	for _, bad := range []string{
		``, `{`, `[]`, `{"slots":0}`, `{"slots":2000000}`,
		`{"slots":4,"nodes":[""]}`,
		`{"slots":4,"nodes":["a"],"owners":[[0,5,0]]}`,
		`{"slots":4,"nodes":["a"],"owners":[[3,0,0]]}`,
		`{"slots":4,"nodes":["a"],"owners":[[0,1,1]]}`,
		`{"slots":4,"nodes":["a"],"owners":[[-1,1,0]]}`,
		`{"slots":4,"nodes":["a"],"owners":[[0,1,-1]]}`,
		`{"slots":4,"nodes":["a"],"moving":[[4,1,0,1]]}`,
		`{"slots":4,"nodes":["a"],"owners":[[0,1,0]],"moving":[[0,1,0,1]]}`,
	} {
		if _, err := decode([]byte(bad)); !errors.Is(err, errMalformed) {
			t.Errorf("decode(%s) = %v, want errMalformed", bad, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	s := newState(8)
	copy(s.owners, []string{"a", "a", "b", "", "b", "a", "a", "c"})
	s.from[3], s.revokedAt[3] = "c", 2
	f.Add(encode(s))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decode(data)
		if err != nil {
			return
		}
		again, err := decode(encode(st))
		if err != nil || !slices.Equal(again.owners, st.owners) || !slices.Equal(again.from, st.from) {
			t.Fatalf("a decoded state does not survive a round trip: %v", err)
		}
	})
}

func TestPlanRevokesThenAssignsOnceReleased(t *testing.T) {
	cur := newState(8)
	for s := range cur.owners {
		cur.owners[s] = "a"
	}
	cur.epoch = 4
	never := func(string, uint64) bool { return false }
	next, changed := plan(cur, []string{"a", "b"}, never)
	if !changed || next.epoch != 5 {
		t.Fatalf("a join changed nothing (epoch %d)", next.epoch)
	}
	revoked := 0
	for s := range next.owners {
		if next.owners[s] == "" {
			revoked++
			if next.from[s] != "a" || next.revokedAt[s] != 5 {
				t.Errorf("slot %d: revoked from %q at %d, want from a at 5", s, next.from[s], next.revokedAt[s])
			}
		}
		if next.owners[s] == "b" {
			t.Errorf("slot %d went to b before a released it", s)
		}
	}
	if revoked != 4 {
		t.Errorf("%d slots revoked, want 4", revoked)
	}
	if again, changed := plan(next, []string{"a", "b"}, never); changed {
		t.Errorf("with nothing released, the plan still changed the table: %v", again.owners)
	}
	var asked []string
	done, changed := plan(next, []string{"a", "b"}, func(from string, at uint64) bool {
		asked = append(asked, from)
		return from == "a" && at == 5
	})
	if !changed || len(done.table().Counts()) != 2 || done.table().Counts()["b"] != 4 || slices.Contains(done.owners, "") {
		t.Fatalf("released slots did not go to b: %v", done.owners)
	}
	if slices.ContainsFunc(done.from, func(f string) bool { return f != "" }) {
		t.Errorf("assigned slots still name a revoked owner: %v", done.from)
	}
	if len(asked) != 4 {
		t.Errorf("released asked %d times, want once per moving slot (4)", len(asked))
	}
	// A slot revoked from a node that is given it back needs no release.
	back, _ := plan(next, []string{"a"}, never)
	if slices.Contains(back.owners, "") {
		t.Errorf("slots revoked from a and given back to a waited for a release: %v", back.owners)
	}
}

func TestOptionDefaultsAndBounds(t *testing.T) {
	o, err := options{}.withDefaults()
	if err != nil || o.Name != "slots" || o.Slots != DefaultSlots || o.RebalanceDelay != 2*time.Second || o.OwnershipTTL != 5*time.Second || o.Logger == nil {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	edge := options{Slots: MaxSlots, OwnershipTTL: 10 * time.Millisecond}
	if o, err := edge.withDefaults(); err != nil || o.Slots != MaxSlots || o.OwnershipTTL != 10*time.Millisecond {
		t.Errorf("the bounds themselves: %+v, %v", o, err)
	}
	if o, err := (options{Slots: 1}).withDefaults(); err != nil || o.Slots != 1 {
		t.Errorf("one slot: %+v, %v", o, err)
	}
	if _, err := (options{OwnershipTTL: 10*time.Millisecond - 1}).withDefaults(); err == nil {
		t.Error("OwnershipTTL under 10ms accepted")
	}
	if _, err := (options{RebalanceDelay: -1}).withDefaults(); err == nil {
		t.Error("a negative RebalanceDelay accepted")
	}
}

func TestOptions(t *testing.T) {
	c := cluster.NewStandalone()
	defer c.Close()
	for i, o := range []Option{WithName("Bad/Name"), WithSlots(-1), WithSlots(MaxSlots + 1), WithRebalanceDelay(-time.Second), WithOwnershipTTL(time.Millisecond)} {
		if _, err := Join(c, "a", o); err == nil {
			t.Errorf("Join accepted option %d", i)
		}
	}
	if _, err := Join(c, ""); err == nil {
		t.Error("Join accepted an empty self ID")
	}
	if _, err := Join(nil, "a"); err == nil || !strings.Contains(err.Error(), "needs a coordinator") {
		t.Errorf("Join of no coordinator: %v", err)
	}
}

func register(t *testing.T, c cluster.Coordinator) string {
	t.Helper()
	n := cluster.Node{ID: cluster.NewID(), Address: cluster.Address{Host: "127.0.0.1", Port: 20300}}
	if err := c.RegisterRemote(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	return n.ID
}

func waitUntil(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAloneOwnsEverySlot(t *testing.T) {
	leakcheck.Register(t)
	c := cluster.NewStandalone()
	defer c.Close()
	self := register(t, c)
	g, err := Join(c, self, WithSlots(100))
	if err != nil {
		t.Fatal(err)
	}
	changes := g.Changes(t.Context())
	first := <-changes
	if len(first.Gained) != 100 || len(first.Lost) != 0 || first.Owned.Len() != 100 || first.Epoch == 0 {
		t.Fatalf("first change: %d gained, %d lost, %d owned at epoch %d; want 100, 0, 100, > 0", len(first.Gained), len(first.Lost), first.Owned.Len(), first.Epoch)
	}
	every := make([]int, 100)
	for i := range every {
		every[i] = i
	}
	if !slices.Equal(first.Gained, every) || !slices.Equal(first.Owned.Slots(), every) {
		t.Fatalf("first change: gained %v, owns %v; want 0 to 99", first.Gained, first.Owned.Slots())
	}
	if term, ok := g.Leading(); !ok || term == 0 {
		t.Error("a group of one does not lead")
	}
	if g.Owner(42) != self || g.Owner(0) != self || g.Owner(99) != self || g.Owner(-1) != "" || g.Owner(100) != "" {
		t.Errorf("Owner(42) %q, Owner(0) %q, Owner(99) %q, Owner(-1) %q, Owner(100) %q", g.Owner(42), g.Owner(0), g.Owner(99), g.Owner(-1), g.Owner(100))
	}
	if i, err := g.Selector().Select(42, peers{"x", self}); err != nil || i != 1 {
		t.Errorf("Select(42) = %d, %v; want 1 (self)", i, err)
	}
	for _, slot := range []int32{-1, 100} {
		if _, err := g.Selector().Select(slot, peers{self}); err == nil || errors.Is(err, ErrUnowned) {
			t.Errorf("Select(%d), out of range: %v, want an error other than ErrUnowned", slot, err)
		}
	}
	if _, err := g.Selector().Select(1, peers{"x"}); err == nil {
		t.Error("Select with the owner missing from the peers did not fail")
	}
	hctx, release, ok := g.Hold(7)
	if !ok {
		t.Fatal("Hold of an owned slot failed")
	}
	if _, _, ok := g.Hold(100); ok {
		t.Error("Hold of a slot out of range succeeded")
	}
	closed := make(chan error)
	go func() { closed <- g.Close() }()
	<-hctx.Done() // Close ends the holds' contexts first
	release()
	release() // a second call is harmless
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, open := <-changes; open {
		t.Error("Changes still open after Close")
	}
	if _, _, ok := g.Hold(7); ok {
		t.Error("Hold succeeded after Close")
	}
	data, _, err := c.GetRecord(context.Background(), "slots")
	if err != nil {
		t.Fatal(err)
	}
	st, err := decode(data)
	if err != nil || st.acks[self] != left {
		t.Errorf("after Close the table's acknowledgement of self is %d (%v), want left", st.acks[self], err)
	}
}

type peers []string

func (p peers) Len() int        { return len(p) }
func (p peers) ID(i int) string { return p[i] }

func TestDeposedLeaderCannotWrite(t *testing.T) {
	c := cluster.NewStandalone()
	defer c.Close()
	self := register(t, c)
	s := newState(DefaultSlots)
	s.term = 1 << 40 // a leader far ahead has written
	if _, err := c.PutRecord(context.Background(), "slots", encode(s), ""); err != nil {
		t.Fatal(err)
	}
	g := &Group{c: c, self: self, opts: options{Name: "slots", Slots: DefaultSlots, OwnershipTTL: time.Second}}
	err := g.step(context.Background(), 5, []string{self}, []string{self}, map[revocation]time.Time{})
	if !errors.Is(err, errDeposed) {
		t.Fatalf("a leader of term 5 over a table of a later term: %v, want errDeposed", err)
	}
	_, v, _ := c.GetRecord(context.Background(), "slots")
	if v != "1" {
		t.Errorf("the table was written (version %s)", v)
	}
}

// embeddedEtcd starts an embedded etcd for one test, checked for leaked
// goroutines and stopped after every clean-up registered later.
func embeddedEtcd(t *testing.T) string {
	leakcheck.Register(t)
	srv, err := embedetcd.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv.Endpoint()
}

func etcdCoordinator(t *testing.T, endpoint string) *etcd.Coordinator {
	t.Helper()
	c, err := etcd.New(context.Background(), etcd.Config{Endpoints: endpoint, Namespace: "/shardtest", ServiceName: "s", TTL: 2 * time.Second, ElectionTTL: 2 * time.Second, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// etcdGroup is a member of a group on the embedded etcd.
func etcdGroup(t *testing.T, endpoint string, opts ...Option) (*Group, string) {
	t.Helper()
	c := etcdCoordinator(t, endpoint)
	self := register(t, c)
	g, err := Join(c, self, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("closing the group of %s: %v", self, err)
		}
		_ = c.Close()
	})
	return g, self
}

// TestMoveWaitsForTheHold: a slot held by its owner is revoked at once
// (the hold's context ends) but goes to the newcomer only when released.
func TestMoveWaitsForTheHold(t *testing.T) {
	endpoint := embeddedEtcd(t)
	// A long OwnershipTTL: the periodic read comes every 15s, so the last
	// release must itself make the owner acknowledge.
	opts := []Option{WithSlots(16), WithRebalanceDelay(50 * time.Millisecond), WithOwnershipTTL(time.Minute)}
	a, _ := etcdGroup(t, endpoint, opts...)
	waitUntil(t, 10*time.Second, "table for a", func() bool { return a.Owned().Len() == 16 })
	holds := map[int]context.Context{}
	releases := map[int]func(){}
	for slot := range 16 {
		hctx, release, ok := a.Hold(slot)
		if !ok {
			t.Fatalf("a cannot hold slot %d", slot)
		}
		holds[slot], releases[slot] = hctx, release
	}
	waitUntil(t, 10*time.Second, "a leading", func() bool { _, ok := a.Leading(); return ok })
	term, _ := a.Leading()
	b, bID := etcdGroup(t, endpoint, opts...)
	var moving []int
	waitUntil(t, 10*time.Second, "revocation of b's share", func() bool {
		moving = moving[:0]
		for slot, hctx := range holds {
			if hctx.Err() != nil {
				moving = append(moving, slot)
			}
		}
		return len(moving) == 8
	})
	time.Sleep(300 * time.Millisecond)
	if n := b.Owned().Len(); n != 0 {
		t.Fatalf("b owns %d slots while a still holds them", n)
	}
	for _, slot := range moving[:7] {
		releases[slot]()
	}
	time.Sleep(300 * time.Millisecond)
	if n := b.Owned().Len(); n != 0 {
		t.Fatalf("b owns %d slots while a still holds one of them", n)
	}
	releases[moving[7]]()
	waitUntil(t, 5*time.Second, "b owning its share", func() bool { return b.Owned().Len() == 8 })
	for _, slot := range moving {
		if a.Owner(slot) != bID && b.Owner(slot) != bID {
			t.Errorf("slot %d did not go to b", slot)
		}
	}
	for slot, release := range releases {
		if !slices.Contains(moving, slot) {
			release()
		}
	}
	if now, ok := a.Leading(); !ok || now != term {
		t.Errorf("a's leadership went from term %d to %d (%t) over one move: it took its own writes for a later leader's", term, now, ok)
	}
}

// unreadable is a coordinator whose records can be made to fail.
type unreadable struct {
	*cluster.Standalone
	fail atomic.Bool
}

func (u *unreadable) GetRecord(ctx context.Context, name string) ([]byte, string, error) {
	if u.fail.Load() {
		return nil, "", errors.New("cut off")
	}
	return u.Standalone.GetRecord(ctx, name)
}

// TestUnreadableTableGivesUpEverySlot: a member that cannot read the table
// for OwnershipTTL gives up its slots, not before, and owns them again
// once it can read.
func TestUnreadableTableGivesUpEverySlot(t *testing.T) {
	leakcheck.Register(t)
	c := &unreadable{Standalone: cluster.NewStandalone()}
	defer c.Close()
	self := register(t, c)
	ttl := 400 * time.Millisecond
	g, err := Join(c, self, WithSlots(8), WithOwnershipTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	waitUntil(t, 5*time.Second, "every slot owned", func() bool { return g.Owned().Len() == 8 })
	hctx, release, _ := g.Hold(3)
	defer release()
	cut := time.Now()
	c.fail.Store(true)
	waitUntil(t, 5*time.Second, "every slot given up", func() bool { return g.Owned().Len() == 0 })
	if took := time.Since(cut); took < ttl/2 {
		t.Errorf("gave up %s after the reads began to fail, before OwnershipTTL %s could run out", took, ttl)
	}
	if hctx.Err() == nil {
		t.Error("a hold's context did not end when its slot was given up")
	}
	for _, slot := range []int32{0, 7} {
		if _, err := g.Selector().Select(slot, peers{self}); !errors.Is(err, ErrUnowned) {
			t.Errorf("Select(%d), given up: %v, want ErrUnowned", slot, err)
		}
	}
	for _, slot := range []int32{-1, 8} {
		if _, err := g.Selector().Select(slot, peers{self}); err == nil || errors.Is(err, ErrUnowned) {
			t.Errorf("Select(%d), out of range: %v, want an error other than ErrUnowned", slot, err)
		}
	}
	c.fail.Store(false)
	waitUntil(t, 5*time.Second, "every slot owned again", func() bool { return g.Owned().Len() == 8 })
}

// TestClosedMemberIsReplacedAtOnce: a member that closes tells the leader,
// which gives its slots away without waiting out OwnershipTTL.
func TestClosedMemberIsReplacedAtOnce(t *testing.T) {
	endpoint := embeddedEtcd(t)
	opts := []Option{WithSlots(64), WithRebalanceDelay(50 * time.Millisecond), WithOwnershipTTL(30 * time.Second)}
	a, _ := etcdGroup(t, endpoint, opts...)
	waitUntil(t, 10*time.Second, "a leading", func() bool { _, ok := a.Leading(); return ok })
	c := etcdCoordinator(t, endpoint)
	b, err := Join(c, register(t, c), opts...)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "b owning half", func() bool { return b.Owned().Len() == 32 })
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	waitUntil(t, 10*time.Second, "a owning everything again", func() bool { return a.Owned().Len() == 64 })
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a closed member's slots moved after %s, as if it had crashed", took)
	}
}

// TestNodesWithoutTheGroupGetNoSlots: a node in the view that never joined
// the group is not given slots nobody would work on.
func TestNodesWithoutTheGroupGetNoSlots(t *testing.T) {
	endpoint := embeddedEtcd(t)
	bystander := etcdCoordinator(t, endpoint)
	register(t, bystander)
	t.Cleanup(func() { _ = bystander.Close() })
	opts := []Option{WithSlots(32), WithRebalanceDelay(50 * time.Millisecond), WithOwnershipTTL(2 * time.Second)}
	a, _ := etcdGroup(t, endpoint, opts...)
	b, _ := etcdGroup(t, endpoint, opts...)
	waitUntil(t, 10*time.Second, "a and b owning every slot between them", func() bool {
		return a.Owned().Len()+b.Owned().Len() == 32 && len(a.Table().Counts()) == 2
	})
}

// flakyWrites is a coordinator whose next record writes fail, as the Nacos
// server's store does for a moment after a restart.
type flakyWrites struct {
	*cluster.Standalone
	failures atomic.Int32
}

func (f *flakyWrites) PutRecord(ctx context.Context, name string, data []byte, version string) (string, error) {
	if f.failures.Add(-1) >= 0 {
		return "", errors.New("500: a lock could not be obtained within the time requested")
	}
	return f.Standalone.PutRecord(ctx, name, data, version)
}

// TestCloseRetriesTellingTheLeader: a write that fails when a closing
// member tells the leader it left is tried again, so the leader still
// hears of it, and Close reports no error.
func TestCloseRetriesTellingTheLeader(t *testing.T) {
	c := &flakyWrites{Standalone: cluster.NewStandalone()}
	defer c.Close()
	self := register(t, c)
	g, err := Join(c, self, WithSlots(8), WithOwnershipTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "every slot owned", func() bool { return g.Owned().Len() == 8 })
	c.failures.Store(2)
	if err := g.Close(); err != nil {
		t.Fatalf("Close after two failed writes: %v", err)
	}
	data, _, err := c.GetRecord(context.Background(), "slots")
	if err != nil {
		t.Fatal(err)
	}
	st, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if ack := st.acks[self]; ack != left {
		t.Fatalf("the record acknowledges %d for %s, want the left mark %d", ack, self, uint64(left))
	}
}

// TestJoinRefusesMistakes: each way of joining that would leave the node
// owning nothing for good, with no error anywhere, is an error from Join
// that names the mistake and the fix; on a real etcd.
func TestJoinRefusesMistakes(t *testing.T) {
	endpoint := embeddedEtcd(t)
	c := etcdCoordinator(t, endpoint)
	defer c.Close()
	if _, err := Join(c, "a"); err == nil || !strings.Contains(err.Error(), "RegisterRemote") {
		t.Errorf("Join before RegisterRemote: %v, want an error saying to call RegisterRemote first", err)
	}
	self := register(t, c)
	if _, err := Join(c, "someone-else"); err == nil || !strings.Contains(err.Error(), self) || !strings.Contains(err.Error(), "someone-else") {
		t.Errorf("Join for another ID: %v, want an error naming both IDs", err)
	}
	l, err := c.Campaign(context.Background(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(context.Background())
	if _, err := Join(c, self, WithName("jobs")); err == nil || !strings.Contains(err.Error(), `"jobs"`) || !strings.Contains(err.Error(), "WithName") {
		t.Errorf("Join of a group named like an election this coordinator leads: %v, want an error naming it and WithName", err)
	}
	g, err := Join(c, self, WithName("work"))
	if err != nil {
		t.Fatalf("a correct Join: %v", err)
	}
	g.Close()
}

// withLogger is a coordinator that keeps a logger, as herd's do.
type withLogger struct {
	cluster.Coordinator
	l *slog.Logger
}

func (w withLogger) Logger() *slog.Logger { return w.l }

// A group logs where its coordinator does, unless WithLogger says
// otherwise.
func TestJoinInheritsTheCoordinatorsLogger(t *testing.T) {
	c := cluster.NewStandalone()
	defer c.Close()
	self := register(t, c)
	inherited, own := slog.New(slog.DiscardHandler), slog.New(slog.DiscardHandler)
	g, err := Join(withLogger{c, inherited}, self, WithName("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.opts.Logger != inherited {
		t.Error("the group does not log where its coordinator does")
	}
	h, err := Join(withLogger{c, inherited}, self, WithName("b"), WithLogger(own))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.opts.Logger != own {
		t.Error("WithLogger did not override the coordinator's")
	}
}
