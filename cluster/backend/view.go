// The membership bookkeeping every coordinator shares: counting malformed
// entries once per write, and publishing a sorted view with self marked.

package backend

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/latest"
)

// Malformed counts entries that did not decode, once per key and revision,
// so a bad entry seen by every re-list is counted once, and counted again
// only when rewritten.
type Malformed struct {
	mu    sync.Mutex
	seen  map[string]uint64
	count atomic.Uint64
}

// Report records that the entry at key, written at revision rev, is
// malformed. It returns true when this is the first report of that write.
func (m *Malformed) Report(key string, rev uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]uint64{}
	}
	if r, ok := m.seen[key]; ok && r == rev {
		return false
	}
	m.seen[key] = rev
	m.count.Add(1)
	return true
}

// Forget drops key, after it was deleted or rewritten with a good value.
func (m *Malformed) Forget(key string) {
	m.mu.Lock()
	delete(m.seen, key)
	m.mu.Unlock()
}

// Retain forgets every key that present does not hold, after a full listing.
func (m *Malformed) Retain(present func(key string) bool) {
	m.mu.Lock()
	for k := range m.seen {
		if !present(k) {
			delete(m.seen, k)
		}
	}
	m.mu.Unlock()
}

// Count is the number of malformed writes seen.
func (m *Malformed) Count() uint64 { return m.count.Load() }

// Sorted sorts nodes by ID and marks the one whose ID is selfID, in place.
func Sorted(nodes []cluster.Node, selfID string) []cluster.Node {
	slices.SortFunc(nodes, func(a, b cluster.Node) int { return strings.Compare(a.ID, b.ID) })
	for i := range nodes {
		nodes[i].Self = selfID != "" && nodes[i].ID == selfID
	}
	return nodes
}

// Has reports whether nodes holds the node id.
func Has(nodes []cluster.Node, id string) bool {
	return slices.ContainsFunc(nodes, func(n cluster.Node) bool { return n.ID == id })
}

// View is a coordinator's published member list: what Watch returns. A
// publisher never blocks on a slow watcher; each watcher gets the latest
// list. The zero value is ready to use.
type View struct {
	value latest.Value[[]cluster.Node]
}

// Publish sorts nodes, marks self and offers them to every watcher.
func (v *View) Publish(nodes []cluster.Node, selfID string) {
	v.value.Publish(Sorted(nodes, selfID))
}

// Remark re-publishes the current list with self marked, after registration.
func (v *View) Remark(selfID string) {
	if nodes, ok := v.value.Load(); ok {
		v.value.Publish(Sorted(slices.Clone(nodes), selfID))
	}
}

// Load returns the list last published, and false before the first.
func (v *View) Load() ([]cluster.Node, bool) { return v.value.Load() }

// Subscribe returns a channel that receives the current list (once one has
// been published) and every later one, coalesced, until ctx ends or the
// view closes; it is what a coordinator's Watch returns.
func (v *View) Subscribe(ctx context.Context) <-chan []cluster.Node { return v.value.Subscribe(ctx) }

// Close closes every subscriber's channel; later Subscribes get a closed one.
func (v *View) Close() { v.value.Close() }
