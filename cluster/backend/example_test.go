package backend_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// server stands in for a backend's server: entries by node ID, and a way to
// tell the coordinators that they changed.
type server struct {
	mu      sync.Mutex
	entries map[string]cluster.Node
	members []*memory
}

func (s *server) changed() {
	s.mu.Lock()
	nodes := make([]cluster.Node, 0, len(s.entries))
	for _, n := range s.entries {
		nodes = append(nodes, n)
	}
	members := s.members
	s.mu.Unlock()
	for _, m := range members {
		m.life.View.Publish(append([]cluster.Node(nil), nodes...), m.life.RegisteredID())
	}
}

// memory is a whole backend, if a tiny one: what differs (Register,
// Supervise, Deregister, the query) is its own; the lifecycle, the view and
// the elections come from package backend.
type memory struct {
	srv  *server
	life backend.Lifecycle
}

var _ cluster.Coordinator = (*memory)(nil)

func newMemory(srv *server) *memory {
	m := &memory{srv: srv}
	m.life.Init("memory", memoryRegistrar{m}, time.Second)
	srv.mu.Lock()
	srv.members = append(srv.members, m)
	srv.mu.Unlock()
	return m
}

func (m *memory) RegisterRemote(ctx context.Context, self cluster.Node) error {
	return m.life.RegisterRemote(ctx, self)
}

func (m *memory) QueryRemoteNodes(context.Context) ([]cluster.Node, error) {
	m.srv.mu.Lock()
	nodes := make([]cluster.Node, 0, len(m.srv.entries))
	for _, n := range m.srv.entries {
		nodes = append(nodes, n)
	}
	m.srv.mu.Unlock()
	return backend.Sorted(nodes, m.life.RegisteredID()), nil
}

func (m *memory) Watch(ctx context.Context) <-chan []cluster.Node { return m.life.View.Subscribe(ctx) }

func (m *memory) Close() error { return m.life.Close(nil) }

func (m *memory) Stats() cluster.Stats { return cluster.Stats{} }

// This server has no compare-and-swap, so the example elects nobody and
// keeps no records; a backend whose server has one builds both on it
// (package leaserecord elects over a single compare-and-swap record).
var errNoCAS = fmt.Errorf("memory: no compare-and-swap on this server: %w", errors.ErrUnsupported)

func (m *memory) Campaign(context.Context, string) (*cluster.Leadership, error) {
	return nil, errNoCAS
}

func (m *memory) Observe(context.Context, string) <-chan cluster.Leader {
	return closed[cluster.Leader]()
}

func (m *memory) GetRecord(context.Context, string) ([]byte, string, error) {
	return nil, "", errNoCAS
}

func (m *memory) PutRecord(context.Context, string, []byte, string) (string, error) {
	return "", errNoCAS
}

func (m *memory) WatchRecord(context.Context, string) <-chan string { return closed[string]() }

// closed is a stream that has ended.
func closed[T any]() <-chan T {
	ch := make(chan T)
	close(ch)
	return ch
}

type memoryRegistrar struct{ m *memory }

// Register refuses an ID that a live entry at another address holds, as
// every backend must.
func (r memoryRegistrar) Register(_ context.Context, self cluster.Node) error {
	srv := r.m.srv
	srv.mu.Lock()
	if holder, ok := srv.entries[self.ID]; ok {
		if err := backend.CheckTakeover(self, holder); err != nil {
			srv.mu.Unlock()
			return err
		}
	}
	if srv.entries == nil {
		srv.entries = map[string]cluster.Node{}
	}
	srv.entries[self.ID] = self
	srv.mu.Unlock()
	srv.changed()
	return nil
}

// Supervise has nothing to repair here; a real one renews a lease or puts
// back a deleted entry until ctx ends.
func (memoryRegistrar) Supervise(ctx context.Context, _ cluster.Node) { <-ctx.Done() }

func (r memoryRegistrar) Deregister(_ context.Context, self cluster.Node) error {
	r.m.srv.mu.Lock()
	delete(r.m.srv.entries, self.ID)
	r.m.srv.mu.Unlock()
	r.m.srv.changed()
	return nil
}

// A backend supplies what differs and forwards the rest to a Lifecycle:
// RegisterRemote's checks and Close's order are written once, here.
func ExampleLifecycle() {
	ctx := context.Background()
	srv := &server{}
	a, b := newMemory(srv), newMemory(srv)
	defer a.Close()
	if err := a.RegisterRemote(ctx, cluster.Node{ID: "node-a", Address: cluster.Address{Host: "10.0.0.1", Port: 11800}}); err != nil {
		panic(err)
	}
	if err := b.RegisterRemote(ctx, cluster.Node{ID: "node-b", Address: cluster.Address{Host: "10.0.0.2", Port: 11800}}); err != nil {
		panic(err)
	}
	twin := newMemory(srv)
	err := twin.RegisterRemote(ctx, cluster.Node{ID: "node-a", Address: cluster.Address{Host: "10.0.0.9", Port: 11800}})
	fmt.Println("twin refused:", err != nil)
	_ = twin.Close()

	nodes, _ := a.QueryRemoteNodes(ctx)
	fmt.Println(len(nodes), nodes[0].ID, nodes[0].Self)
	_ = b.Close() // deregisters: a's view drops it
	nodes, _ = a.QueryRemoteNodes(ctx)
	fmt.Println(len(nodes))
	// Output:
	// twin refused: true
	// 2 node-a true
	// 1
}
