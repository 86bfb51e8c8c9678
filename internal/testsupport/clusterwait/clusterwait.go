// Package clusterwait is test support for herd's own tests: fresh nodes,
// and waiting on a coordinator's views, leaders and conditions with a
// bound, failing the test with what was last seen.
package clusterwait

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

var port atomic.Int32

func init() { port.Store(20000) }

// NewNode returns a node with a fresh ID and a distinct loopback address.
// Nothing listens there: coordinators only store addresses.
func NewNode() cluster.Node {
	return cluster.Node{ID: cluster.NewID(), Address: cluster.Address{Host: "127.0.0.1", Port: int(port.Add(1))}}
}

// Keeps fails the test if a view w publishes within d does not satisfy ok:
// what a watch must keep showing, e.g. while its client is cut off.
func Keeps(t testing.TB, w <-chan []cluster.Node, d time.Duration, what string, ok func([]cluster.Node) bool) {
	t.Helper()
	quiet := time.After(d)
	for {
		select {
		case ns := <-w:
			if !ok(ns) {
				t.Fatalf("within %s, a view lacked %s: %v", d, what, IDs(ns))
			}
		case <-quiet:
			return
		}
	}
}

// WaitUntil polls ok until it holds, failing the test after d.
func WaitUntil(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitFor reads w until a list satisfies ok, or fails the test after d.
func WaitFor(t testing.TB, w <-chan []cluster.Node, d time.Duration, what string, ok func([]cluster.Node) bool) []cluster.Node {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var last []cluster.Node
	for {
		select {
		case nodes, open := <-w:
			if !open {
				t.Fatalf("watch closed while waiting for %s; last view %v", what, IDs(last))
			}
			last = nodes
			if ok(nodes) {
				return nodes
			}
		case <-timer.C:
			t.Fatalf("no view with %s within %s; last view %v", what, d, IDs(last))
			return nil
		}
	}
}

// Has reports whether nodes contains id.
func Has(nodes []cluster.Node, id string) bool { return backend.Has(nodes, id) }

// IDs lists the node IDs, marking self with a star, for failure messages.
func IDs(nodes []cluster.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
		if n.Self {
			out[i] += "*"
		}
	}
	return out
}

// WaitLeader reads obs until ok holds or d passes.
func WaitLeader(t testing.TB, obs <-chan cluster.Leader, d time.Duration, what string, ok func(cluster.Leader) bool) cluster.Leader {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var last cluster.Leader
	for {
		select {
		case l, open := <-obs:
			if !open {
				t.Fatalf("Observe closed while waiting for %s; last %+v", what, last)
			}
			last = l
			if ok(l) {
				return l
			}
		case <-timer.C:
			t.Fatalf("not within %s: %s; last observed %+v", d, what, last)
		}
	}
}

// Percentiles returns the p50 and p99 of ds (not empty), rounded to 100µs,
// for the figures tests log.
func Percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		return s[min(len(s)-1, int(q*float64(len(s))))].Round(100 * time.Microsecond)
	}
	return at(0.5), at(0.99)
}
