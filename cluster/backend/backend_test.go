package backend_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
)

// steps records what a fake backend was asked to do, in order.
type steps struct {
	mu   sync.Mutex
	list []string
}

func (s *steps) add(step string) {
	s.mu.Lock()
	s.list = append(s.list, step)
	s.mu.Unlock()
}

func (s *steps) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}

// fakeRegistrar is a backend's part that records every call; register may
// block or fail, and deregister may hang until its context ends.
type fakeRegistrar struct {
	steps       *steps
	register    func(ctx context.Context) error
	hangOnLeave bool
}

func (f *fakeRegistrar) Register(ctx context.Context, self cluster.Node) error {
	f.steps.add("register " + self.ID)
	if f.register != nil {
		return f.register(ctx)
	}
	return nil
}

func (f *fakeRegistrar) Supervise(ctx context.Context, self cluster.Node) {
	f.steps.add("supervise " + self.ID)
	<-ctx.Done()
	f.steps.add("supervisor stopped")
}

func (f *fakeRegistrar) Deregister(ctx context.Context, self cluster.Node) error {
	f.steps.add("deregister " + self.ID)
	if f.hangOnLeave {
		<-ctx.Done()
		return fmt.Errorf("deregistering %s: %w", self.ID, ctx.Err())
	}
	return nil
}

var node = cluster.Node{ID: "node-a", Address: cluster.Address{Host: "127.0.0.1", Port: 11800}}

func newLifecycle(t *testing.T, reg backend.Registrar, timeout time.Duration) *backend.Lifecycle {
	t.Helper()
	leakcheck.Register(t)
	l := &backend.Lifecycle{}
	l.Init("fake", reg, timeout)
	t.Cleanup(func() { _ = l.Close(nil) })
	return l
}

// Close runs in its one order: leaderships end while the server can still
// release them, then the supervisor stops, then self is deregistered, and
// only then is the backend shut down; the view closes last.
func TestCloseRunsInItsOneOrder(t *testing.T) {
	s := &steps{}
	l := newLifecycle(t, &fakeRegistrar{steps: s}, time.Second)
	watch := l.View.Subscribe(context.Background())
	if err := l.RegisterRemote(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	entry, _, err := l.Elections.Begin(context.Background(), "leader", node.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := entry.Lead(1, func(context.Context) error { s.add("resigned"); return nil }); err != nil {
		t.Fatal(err)
	}
	if term, ok := l.Leading("leader"); !ok || term != 1 || !l.Campaigning("leader") {
		t.Fatalf("Leading = %d, %v; want term 1 while the leadership holds", term, ok)
	}
	waitFor(t, s, "supervise node-a")
	err = l.Close(func() error {
		if l.Context().Err() == nil {
			t.Error("shutdown ran before Context was cancelled")
		}
		s.add("shutdown")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"register node-a", "supervise node-a", "resigned", "supervisor stopped", "deregister node-a", "shutdown"}
	if got := s.get(); !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	for range watch {
	} // closed by Close
	if err := l.Close(nil); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	if got := s.get(); len(got) != len(want) {
		t.Fatalf("a second Close did something: %v", got[len(want):])
	}
}

func waitFor(t *testing.T, s *steps, step string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(s.get(), step) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 5s: %v", step, s.get())
		}
		time.Sleep(time.Millisecond)
	}
}

// A deregistration the server never answers is bounded by the timeout, and
// its error is returned.
func TestCloseBoundsTheDeregistration(t *testing.T) {
	s := &steps{}
	l := newLifecycle(t, &fakeRegistrar{steps: s, hangOnLeave: true}, 50*time.Millisecond)
	if err := l.RegisterRemote(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := l.Close(nil)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Close took %s with a 50ms timeout", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the deregistration's deadline", err)
	}
}

// RegisterRemote refuses a bad node, a second node and a closed coordinator;
// a failed registration starts nothing and can be tried again.
func TestRegisterRemoteRefusals(t *testing.T) {
	s := &steps{}
	fail := errors.New("server says no")
	reg := &fakeRegistrar{steps: s, register: func(context.Context) error { return fail }}
	l := newLifecycle(t, reg, time.Second)
	if err := l.RegisterRemote(context.Background(), cluster.Node{ID: "bad id", Address: node.Address}); err == nil {
		t.Fatal("an invalid node was accepted")
	}
	if err := l.RegisterRemote(context.Background(), node); !errors.Is(err, fail) {
		t.Fatalf("RegisterRemote = %v, want the backend's error", err)
	}
	if id := l.RegisteredID(); id != "" {
		t.Fatalf("RegisteredID = %q after a failed registration", id)
	}
	reg.register = nil
	if err := l.RegisterRemote(context.Background(), node); err != nil {
		t.Fatalf("a second try after a failure: %v", err)
	}
	if id := l.RegisteredID(); id != node.ID {
		t.Fatalf("RegisteredID = %q, want %q", id, node.ID)
	}
	other := node
	other.ID = "node-b"
	err := l.RegisterRemote(context.Background(), other)
	if err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("a second node: %v, want already registered", err)
	}
	if err := l.Close(nil); err != nil {
		t.Fatal(err)
	}
	if err := l.RegisterRemote(context.Background(), node); !errors.Is(err, cluster.ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
	if slices.Contains(s.get(), "supervise bad id") {
		t.Fatal("an invalid node reached the backend")
	}
}

// Close waits for a registration in flight and then deregisters it, so a
// node is never left registered by a coordinator that closed.
func TestCloseWaitsForARegistrationInFlight(t *testing.T) {
	s := &steps{}
	entered, release := make(chan struct{}), make(chan struct{})
	reg := &fakeRegistrar{steps: s, register: func(context.Context) error {
		close(entered)
		<-release
		return nil
	}}
	l := newLifecycle(t, reg, time.Second)
	registered := make(chan error, 1)
	go func() { registered <- l.RegisterRemote(context.Background(), node) }()
	<-entered
	if id := l.RegisteredID(); id != "" { // and it does not block on the server
		t.Fatalf("RegisteredID = %q during the registration", id)
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close(nil) }()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-registered; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.get(), "deregister node-a") {
		t.Fatalf("the registration that finished during Close was not deregistered: %v", s.get())
	}
}

// Registering marks self in the view published before it.
func TestRegisterRemoteMarksSelfInTheView(t *testing.T) {
	l := newLifecycle(t, &fakeRegistrar{steps: &steps{}}, time.Second)
	peer := cluster.Node{ID: "node-b", Address: cluster.Address{Host: "127.0.0.2", Port: 11800}}
	l.View.Publish([]cluster.Node{peer, node}, "")
	if err := l.RegisterRemote(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	nodes, _ := l.View.Load()
	if len(nodes) != 2 || !nodes[0].Self || nodes[1].Self {
		t.Fatalf("view %+v, want node-a marked self", nodes)
	}
}

// updatingRegistrar can rewrite its entry; the rewrite reaches the view as
// a backend's watch would bring it.
type updatingRegistrar struct {
	*fakeRegistrar
	view *backend.View
}

func (u updatingRegistrar) Update(_ context.Context, self cluster.Node) error {
	u.steps.add(fmt.Sprintf("update %s leaving=%v zone=%s", self.ID, self.Leaving(), self.Meta["zone"]))
	go func() {
		time.Sleep(markDelay) // the server, then the watch
		u.view.Publish([]cluster.Node{self}, self.ID)
	}()
	return nil
}

// markDelay is how long the fake's mark takes to come back through the view.
const markDelay = 50 * time.Millisecond

// On a backend that can rewrite an entry, Close marks the node leaving and
// waits until its own watch shows the mark before deregistering, so that
// peers tell the graceful leave from a node that vanished. The node's own
// metadata map is left alone.
func TestCloseMarksTheNodeLeavingFirst(t *testing.T) {
	s := &steps{}
	l := &backend.Lifecycle{}
	l.Init("fake", updatingRegistrar{&fakeRegistrar{steps: s}, &l.View}, time.Second)
	leakcheck.Register(t)
	n := node
	n.Meta = map[string]string{"zone": "a"}
	if err := l.RegisterRemote(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "supervise node-a")
	l.View.Publish([]cluster.Node{n}, n.ID) // the watch shows the node, unmarked
	start := time.Now()
	if err := l.Close(nil); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	want := []string{"register node-a", "supervise node-a", "supervisor stopped", "update node-a leaving=true zone=a", "deregister node-a"}
	if got := s.get(); !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	if took < markDelay+backend.LeaveSettle || took >= backend.LeaveNotice {
		t.Fatalf("Close took %s: it must wait for the mark to show (%s) and LeaveSettle (%s) more, and no longer", took, markDelay, backend.LeaveSettle)
	}
	if len(n.Meta) != 1 {
		t.Fatalf("the caller's metadata was changed: %v", n.Meta)
	}
}

// An error of the backend's shutdown is Close's too, beside the others.
func TestCloseReturnsTheShutdownsError(t *testing.T) {
	l := newLifecycle(t, &fakeRegistrar{steps: &steps{}}, time.Second)
	failed := errors.New("client would not close")
	if err := l.Close(func() error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("Close = %v, want the shutdown's error", err)
	}
}

// A node without metadata is marked too.
func TestCloseMarksANodeWithoutMetadata(t *testing.T) {
	s := &steps{}
	l := &backend.Lifecycle{}
	l.Init("fake", updatingRegistrar{&fakeRegistrar{steps: s}, &l.View}, time.Second)
	if err := l.RegisterRemote(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.get(), "update node-a leaving=true zone=") {
		t.Fatalf("steps %v, want the node marked", s.get())
	}
}

// A withdrawn registration stops its supervisor, is neither marked nor
// deregistered by Close, and leaves room for a new one; one withdrawn while
// it was being made does not count.
func TestWithdraw(t *testing.T) {
	s := &steps{}
	reg := &fakeRegistrar{steps: s}
	l := newLifecycle(t, reg, time.Second)
	if err := l.RegisterRemote(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "supervise node-a")
	l.Withdraw()
	if id := l.RegisteredID(); id != "" {
		t.Fatalf("RegisteredID = %q after Withdraw", id)
	}
	waitFor(t, s, "supervisor stopped")

	reg.register = func(context.Context) error {
		l.Withdraw() // the backend gives the ID up before the registration returns
		return nil
	}
	if err := l.RegisterRemote(context.Background(), node); err != nil {
		t.Fatalf("a registration withdrawn as it was made: %v", err)
	}
	if id := l.RegisteredID(); id != "" {
		t.Fatalf("RegisteredID = %q after a registration withdrawn as it was made", id)
	}
	reg.register = nil
	if err := l.RegisterRemote(context.Background(), node); err != nil {
		t.Fatalf("registering again after a withdrawal: %v", err)
	}
	if id := l.RegisteredID(); id != node.ID {
		t.Fatalf("RegisteredID = %q, want %q", id, node.ID)
	}
	l.Withdraw()
	if err := l.Close(nil); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(s.get(), "deregister node-a") {
		t.Fatalf("Close deregistered a withdrawn node: %v", s.get())
	}
	if n := strings.Count(strings.Join(s.get(), "\n"), "supervise node-a"); n != 2 {
		t.Fatalf("%d supervisors started, want 2 (none for the registration withdrawn as it was made): %v", n, s.get())
	}
}
