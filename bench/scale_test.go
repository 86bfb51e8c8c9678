package bench

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/etcd"
	"github.com/herd-go/herd/internal/embedetcd"
	"github.com/herd-go/herd/remote"
)

var quiet = slog.New(slog.DiscardHandler)

// scaleNode is one member: an etcd coordinator that registered it and a
// Manager over it, with default options. Its address is never dialled:
// nothing is sent, as in an idle cluster.
type scaleNode struct {
	self  cluster.Node
	coord *etcd.Coordinator
	mgr   *remote.Manager
}

func startScaleNode(endpoint string, i int) (*scaleNode, error) {
	cfg := etcd.DefaultConfig()
	cfg.Endpoints = endpoint
	coord, err := etcd.New(context.Background(), cfg, cluster.WithLogger(quiet))
	if err != nil {
		return nil, err
	}
	n := &scaleNode{self: cluster.Node{ID: fmt.Sprintf("node-%04d", i), Address: cluster.Address{Host: "127.0.0.1", Port: 20000 + i}}, coord: coord}
	if err := coord.RegisterRemote(context.Background(), n.self); err != nil {
		coord.Close()
		return nil, err
	}
	n.mgr, err = remote.NewManager(coord, n.self, remote.NewServer(), remote.WithLogger(quiet), remote.WithErrorHandler(func(error) {}))
	if err != nil {
		coord.Close()
		return nil, err
	}
	return n, nil
}

func (n *scaleNode) stop() {
	n.mgr.Close()
	n.coord.Close()
}

// TestScale: N nodes (default 200, HERD_BENCH_SCALE_NODES) in this process
// on one embedded etcd: the time a cold start of all of them takes to
// converge, the heap and goroutines per node once idle, and the time a
// join takes to reach every node.
func TestScale(t *testing.T) {
	size := envInt("HERD_BENCH_SCALE_NODES", 200)
	joins := envInt("HERD_BENCH_SCALE_JOINS", 20)
	srv, err := embedetcd.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h0, g0 := footprint()

	// Cold start: all at once.
	nodes := make([]*scaleNode, size)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			n, err := startScaleNode(srv.Endpoint(), i)
			if err != nil {
				t.Error(err)
				return
			}
			nodes[i] = n
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	waitAll(t, nodes, func(s *remote.Snapshot) bool { return s.Len() == size }, time.Minute)
	cold := time.Since(start)

	time.Sleep(2 * time.Second) // idle
	h1, g1 := footprint()
	perNode := float64(g1-g0) / float64(size)

	// Joins, one at a time: the time until every node's view has the
	// newcomer; then it leaves, and every node must see that before the next.
	var joined []time.Duration
	for j := range joins {
		seen := watchAll(nodes, fmt.Sprintf("node-%04d", size+j), true)
		begin := time.Now()
		n, err := startScaleNode(srv.Endpoint(), size+j)
		if err != nil {
			t.Fatal(err)
		}
		last := seen.wait(t)
		joined = append(joined, last.Sub(begin))
		gone := watchAll(nodes, n.self.ID, false)
		n.stop()
		gone.wait(t)
	}

	tb := newTable(fmt.Sprintf("Scale: %d nodes with Managers in one process on one embedded etcd, default options", size), "", "figure")
	tb.add("cold start: all registered and every view complete", dur(cold))
	tb.add("heap per node, idle (this process, etcd's share included)", fmt.Sprintf("%.2f MiB", float64(int64(h1)-int64(h0))/float64(size)/(1<<20)))
	tb.add("goroutines per node, idle", fmt.Sprintf("%.1f", perNode))
	tb.add(fmt.Sprintf("goroutines per idle peer (per node ÷ %d peers)", size-1), fmt.Sprintf("%.3f", perNode/float64(size-1)))
	tb.add(fmt.Sprintf("a join seen by all %d, p50 / p99 of %d", size, joins), dur(quantile(joined, 0.5))+" / "+dur(quantile(joined, 0.99)))
	tb.print()
}

func waitAll(t *testing.T, nodes []*scaleNode, ok func(*remote.Snapshot) bool, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		done := true
		for _, n := range nodes {
			if !ok(n.mgr.Snapshot()) {
				done = false
				break
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the views did not converge")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sighting records when the last of the nodes' Managers published a view
// with (or without) one ID.
type sighting struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	last   time.Time
	seen   int
}

func has(s *remote.Snapshot, id string) bool {
	for i := range s.Len() {
		if s.ID(i) == id {
			return true
		}
	}
	return false
}

// watchAll subscribes to every node before the change is made, so no
// publication is missed.
func watchAll(nodes []*scaleNode, id string, present bool) *sighting {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sighting{cancel: cancel}
	for _, n := range nodes {
		ch := n.mgr.Subscribe(ctx)
		s.wg.Go(func() {
			for snap := range ch {
				if has(snap, id) == present {
					now := time.Now()
					s.mu.Lock()
					s.seen++
					if now.After(s.last) {
						s.last = now
					}
					s.mu.Unlock()
					return
				}
			}
		})
	}
	return s
}

// wait returns when every node has seen the change, or fails after 30s.
func (s *sighting) wait(t *testing.T) time.Time {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cancel()
		<-done
		t.Fatalf("only %d nodes saw the change within 30s", s.seen)
	}
	s.cancel()
	return s.last
}
