package remote

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/latest"
	"github.com/herd-go/herd/selector"
)

// Membership is what the Manager needs from a coordinator.
type Membership interface {
	cluster.NodesQuery
	cluster.Watcher
}

// Client delivers messages to one node; PeerClient and SelfClient are the two
// kinds a Manager makes.
type Client interface {
	Send(ctx context.Context, worker string, data []byte) error
	Close() error
}

// Dialer makes the client for a peer. The default is DialPeer.
type Dialer func(peer cluster.Node) (Client, error)

// EmptyPolicy says what the Manager does when a healthy backend answers with
// no nodes at all, not even self. That happens when the backend's data was
// wiped or self's registration lapsed; it rarely means every peer is gone.
type EmptyPolicy int

const (
	// KeepLastView (the default) ignores an empty answer: the view stays as it
	// was, and, if it holds peers that the answer would have dropped, the
	// error handler gets ErrEmptyAnswer. With self alone in the view there is
	// nothing to keep, so a fresh cluster, whose backend answers empty until
	// self's registration shows, reports nothing.
	KeepLastView EmptyPolicy = iota
	// AcceptEmpty applies it: the view shrinks to self alone.
	AcceptEmpty
)

// ErrEmptyAnswer is reported when an empty answer is ignored under KeepLastView.
var ErrEmptyAnswer = errors.New("remote: the backend answered with no nodes; keeping the last view")

// Snapshot is one immutable view of the cluster: nodes sorted by address,
// deduplicated, self included, each with its client. Readers never lock.
// It implements selector.Peers.
type Snapshot struct {
	nodes   []cluster.Node
	clients []Client
	hashes  []uint64 // selector.IDHash of each node's ID
	// Version counts the views a Manager has published, from 1.
	Version uint64
	// Added and Removed are the nodes that joined and left since the previous view.
	Added, Removed []cluster.Node

	maglevOnce sync.Once
	maglev     *selector.MaglevTable
	// maglevUsed is the Manager's note that a view's Maglev table was asked
	// for, so that it builds the next views' tables as it publishes them.
	maglevUsed *atomic.Bool
}

// IDHash is selector.IDHash of the i-th node's ID, kept so that
// selector.Consistent does not hash every ID on every Select.
func (s *Snapshot) IDHash(i int) uint64 { return s.hashes[i] }

// MaglevTable is the view's selector.Maglev table, built once per view: by
// the Manager as it publishes the view, once any view's table was used, or
// else by the first call.
func (s *Snapshot) MaglevTable() *selector.MaglevTable {
	s.maglevOnce.Do(func() {
		s.maglev = selector.NewMaglevTable(s)
		if s.maglevUsed != nil {
			s.maglevUsed.Store(true)
		}
	})
	return s.maglev
}

// Len is the number of nodes.
func (s *Snapshot) Len() int { return len(s.nodes) }

// ID is the i-th node's ID.
func (s *Snapshot) ID(i int) string { return s.nodes[i].ID }

// Node returns the i-th node.
func (s *Snapshot) Node(i int) cluster.Node { return s.nodes[i] }

// Client returns the i-th node's client.
func (s *Snapshot) Client(i int) Client { return s.clients[i] }

// Nodes returns a copy of the nodes.
func (s *Snapshot) Nodes() []cluster.Node { return slices.Clone(s.nodes) }

// ManagerOption changes a Manager's defaults.
type ManagerOption func(*managerOptions)

type managerOptions struct {
	refresh      time.Duration
	queryTimeout time.Duration
	dialer       Dialer
	clientOpts   []ClientOption
	empty        EmptyPolicy
	onError      func(error)
	logger       *slog.Logger
	protection   protection
}

// WithRefreshInterval sets how often the Manager queries the backend as a
// safety net behind the watch; default 10s.
func WithRefreshInterval(d time.Duration) ManagerOption {
	return func(o *managerOptions) { o.refresh = d }
}

// WithDialer replaces DialPeer as the way peer clients are made.
func WithDialer(d Dialer) ManagerOption { return func(o *managerOptions) { o.dialer = d } }

// WithClientOptions gives every peer client the Manager dials these
// options (after its own logger, which WithClientLogger overrides).
func WithClientOptions(opts ...ClientOption) ManagerOption {
	return func(o *managerOptions) { o.clientOpts = append(o.clientOpts, opts...) }
}

// WithEmptyPolicy sets what an empty answer from the backend does.
func WithEmptyPolicy(p EmptyPolicy) ManagerOption { return func(o *managerOptions) { o.empty = p } }

// WithErrorHandler receives every refresh and dial error. It runs on the
// Manager's goroutine: keep it quick.
func WithErrorHandler(f func(error)) ManagerOption { return func(o *managerOptions) { o.onError = f } }

// WithLogger logs each refresh and dial error to l when no error handler is
// set, and is the peer clients' logger unless WithClientLogger names one.
// Without it the Manager logs to the coordinator's logger (the one given to
// cluster.New with cluster.WithLogger), or nowhere; Err still reports the
// last error.
func WithLogger(l *slog.Logger) ManagerOption {
	return func(o *managerOptions) {
		if l != nil {
			o.logger = l
		}
	}
}

// Manager keeps a pool of clients, one per node, in step with membership.
type Manager struct {
	self   cluster.Node
	server *Server
	src    Membership
	opts   managerOptions

	mu       sync.Mutex         // serialises apply
	applied  uint64             // applies so far, under mu: a query that saw fewer is stale
	guard    guard              // protection mode, under mu
	rejected map[clientKey]bool // entries refused in the last answer, under mu
	refused  uint64             // entries refused so far, under mu
	// holdBegan wakes the loop to confirm a hold once its period is over.
	holdBegan chan struct{}
	current   atomic.Pointer[Snapshot]
	views     latest.Value[*Snapshot]
	lastErr   atomic.Pointer[error]

	// The current snapshot's lookup, under mu, rebuilt at each publish so
	// that an answer is compared with the view without allocating: pos maps a
	// node ID to its index, keys holds each node's formatted address (the
	// sort key). The scratch slices below, indexed like the view, are sized
	// there too: marks (with gen) tick off the nodes an answer lists in
	// unchanged; slot, slotGen and emitted are normalize's.
	pos      map[string]int
	keys     []string
	marks    []uint64
	slot     []int
	slotGen  []uint64
	emitted  []uint64
	freshIDs map[string]struct{} // IDs of new nodes normalize kept
	normGen  uint64              // gen of normalize's last answer
	gen      uint64

	maglevUsed atomic.Bool // a view's Maglev table was asked for

	// Counters for Stats, under mu.
	joined, left  uint64
	lastAnswer    time.Time // when an answer from the backend was last applied
	registered    bool      // whether that answer listed self
	queryFailures atomic.Uint64

	cancel  context.CancelFunc
	loop    sync.WaitGroup
	closers sync.WaitGroup // clients of removed nodes, flushing
	closed  atomic.Bool
}

// NewManager starts a manager for self (the node this process registered)
// over src. Messages for self go to server in-process. It queries src once
// before it returns (bounded by the query timeout), so the first snapshot
// already holds the peers; if that query fails, the error is reported and
// the view starts with self alone until the watch or the next query.
func NewManager(src Membership, self cluster.Node, server *Server, opts ...ManagerOption) (*Manager, error) {
	if err := self.Validate(); err != nil {
		return nil, err
	}
	if src == nil || server == nil {
		return nil, errors.New("remote: NewManager needs a membership source and a server")
	}
	// The coordinator's logger, given once to cluster.New, is the default
	// of the Manager and of its peer clients.
	inherited := cluster.LoggerOf(src)
	if inherited == nil {
		inherited = slog.New(slog.DiscardHandler)
	}
	o := managerOptions{refresh: 10 * time.Second, logger: inherited,
		protection: protection{threshold: DefaultProtectionThreshold, confirm: DefaultProtectionConfirm}}
	for _, opt := range opts {
		opt(&o)
	}
	o.clientOpts = append([]ClientOption{WithClientLogger(o.logger)}, o.clientOpts...)
	if o.refresh <= 0 {
		return nil, fmt.Errorf("remote: refresh interval %s must be positive", o.refresh)
	}
	if err := o.protection.check(); err != nil {
		return nil, err
	}
	if o.queryTimeout == 0 {
		o.queryTimeout = min(o.refresh, 10*time.Second)
	}
	if o.dialer == nil {
		copts := o.clientOpts
		o.dialer = func(n cluster.Node) (Client, error) { return DialPeer(n, copts...) }
	}
	self.Self = true
	m := &Manager{self: self, server: server, src: src, opts: o,
		guard: guard{protection: o.protection}, holdBegan: make(chan struct{}, 1)}
	first := &Snapshot{nodes: []cluster.Node{self}, clients: []Client{NewSelfClient(self, server)}, hashes: []uint64{selector.IDHash(self.ID)},
		Version: 1, Added: []cluster.Node{self}, maglevUsed: &m.maglevUsed}
	m.pos, m.freshIDs = map[string]int{}, map[string]struct{}{}
	m.current.Store(first)
	m.index(first, []string{self.Address.String()})
	m.views.Publish(first)

	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	_ = m.Refresh(ctx)
	m.loop.Add(1)
	go m.run(ctx)
	return m, nil
}

// Snapshot returns the current view. It never blocks and never returns nil.
func (m *Manager) Snapshot() *Snapshot { return m.current.Load() }

// Subscribe returns a channel that receives the current snapshot at once and
// every new one, coalesced. It is closed when ctx ends or the Manager closes.
func (m *Manager) Subscribe(ctx context.Context) <-chan *Snapshot { return m.views.Subscribe(ctx) }

// Err returns the last refresh error, or nil once a refresh succeeds again.
func (m *Manager) Err() error {
	if p := m.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Refresh queries the backend now and applies the answer. A failed query
// leaves the view as it was and returns the error. An answer is dropped if
// a newer update (a watch push, another query) was applied while it was in
// flight: the newer one wins.
func (m *Manager) Refresh(ctx context.Context) error {
	if m.closed.Load() {
		return errors.New("remote: manager is closed")
	}
	m.mu.Lock()
	seen := m.applied
	m.mu.Unlock()
	started := time.Now()
	ctx, cancel := context.WithTimeout(ctx, m.opts.queryTimeout)
	defer cancel()
	nodes, err := m.src.QueryRemoteNodes(ctx)
	if err != nil {
		m.queryFailures.Add(1)
		m.mu.Lock()
		m.guard.outage = true
		m.mu.Unlock()
		err = fmt.Errorf("remote: querying members (keeping the last view): %w", err)
		m.report(err)
		return err
	}
	return m.applyIf(nodes, &seen, started)
}

func (m *Manager) run(ctx context.Context) {
	defer m.loop.Done()
	watch := m.src.Watch(ctx)
	tick := time.NewTicker(m.opts.refresh)
	defer tick.Stop()
	var confirm <-chan time.Time // a query that may confirm a hold
	for {
		select {
		case <-ctx.Done():
			return
		case nodes, ok := <-watch:
			if !ok {
				// The coordinator closed; the periodic query is all that is left.
				watch = nil
				continue
			}
			_ = m.applyIf(nodes, nil, time.Time{})
		case <-tick.C:
			_ = m.Refresh(ctx)
		case <-m.holdBegan:
			confirm = time.After(m.opts.protection.confirm)
		case <-confirm:
			confirm = nil
			_ = m.Refresh(ctx)
			if m.holding() { // the answer was stale or the query failed: try again
				confirm = time.After(m.opts.protection.confirm)
			}
		}
	}
}

func (m *Manager) report(err error) {
	if err == nil {
		m.lastErr.Store(nil)
		return
	}
	m.lastErr.Store(&err)
	if m.opts.onError != nil {
		m.opts.onError(err)
	} else {
		m.opts.logger.Warn("herd/remote: membership", "err", err)
	}
}

// clientKey identifies a client: the same node at the same address.
type clientKey struct {
	id   string
	addr cluster.Address
}

func keyOf(n cluster.Node) clientKey { return clientKey{n.ID, n.Address} }

// answer is an answer from the backend made into a view: the nodes sorted
// and deduplicated, each one's sort key (its formatted address), and where
// each was in the current view (-1 for a node new to it).
type answer struct {
	nodes []cluster.Node
	keys  []string
	from  []int
}

// normalize puts self first so it wins its address, drops later duplicates
// of an address and of an ID, and sorts by address as SkyWalking does. With
// validate, it refuses the nodes peers could not dial (refuse).
//
// The nodes of the current view keep its order (it is sorted by the same
// keys), so only the new ones are formatted, checked and sorted, and then
// merged in: a change of k nodes in a view of N costs O(N + k log k) and a
// handful of allocations plus O(k).
func (m *Manager) normalize(in []cluster.Node, validate bool) answer {
	type keyed struct {
		key  string
		pos  int // in the answer; self is -1, so it wins its address
		cur  int // in the current view, or -1
		node cluster.Node
	}
	cur := m.current.Load()
	m.gen++
	m.normGen = m.gen
	// slot[c] is where the answer lists the current view's c-th node, when
	// slotGen[c] is this round's gen.
	self := m.pos[m.self.ID]
	m.slot[self], m.slotGen[self] = -1, m.gen
	var fresh []keyed
	var rejected map[clientKey]bool
	for i, n := range in {
		if n.ID == m.self.ID {
			continue
		}
		if c, ok := m.pos[n.ID]; ok && cur.nodes[c].Address == n.Address {
			if m.slotGen[c] != m.gen { // listed twice: the first counts
				m.slot[c], m.slotGen[c] = i, m.gen
			}
			continue
		}
		if validate {
			if err := n.Validate(); err != nil {
				rejected = m.refuse(n, err, rejected)
				continue
			}
		}
		fresh = append(fresh, keyed{n.Address.String(), i, -1, n})
	}
	if validate {
		m.rejected = rejected
	}
	byKey := func(a, b keyed) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.pos, b.pos)) }
	slices.SortFunc(fresh, byKey)

	// Merged in order of address and then of place in the answer, the
	// duplicates of an address are adjacent, the first listed first. An ID
	// listed at two addresses keeps the lower one, so that every node's view
	// agrees whatever order its answers came in; only a new node can share
	// an ID (the current view's IDs are distinct), so only new ones are
	// remembered by ID, in freshIDs.
	clear(m.freshIDs)
	a := answer{nodes: make([]cluster.Node, 0, len(in)+1), keys: make([]string, 0, len(in)+1), from: make([]int, 0, len(in)+1)}
	var last string
	emit := func(k keyed) {
		if len(a.nodes) > 0 && k.key == last {
			return
		}
		if len(m.freshIDs) > 0 || k.cur < 0 {
			if _, dup := m.freshIDs[k.node.ID]; dup {
				return
			}
			if k.cur < 0 {
				if c, ok := m.pos[k.node.ID]; ok && m.emitted[c] == m.gen {
					return
				}
				m.freshIDs[k.node.ID] = struct{}{}
			}
		}
		if k.cur >= 0 {
			m.emitted[k.cur] = m.gen
		}
		n := k.node
		n.Self = n.ID == m.self.ID
		a.nodes, a.keys, a.from, last = append(a.nodes, n), append(a.keys, k.key), append(a.from, k.cur), k.key
	}
	f := 0
	for c := range cur.nodes {
		if m.slotGen[c] != m.gen {
			continue
		}
		k := keyed{key: m.keys[c], pos: m.slot[c], cur: c, node: m.self}
		if k.pos >= 0 {
			k.node = in[k.pos]
		}
		for ; f < len(fresh) && byKey(fresh[f], k) < 0; f++ {
			emit(fresh[f])
		}
		emit(k)
	}
	for ; f < len(fresh); f++ {
		emit(fresh[f])
	}
	return a
}

// withoutLeavers returns nodes without the peers that carry the mark of a
// graceful leave (cluster.Node.Leaving), and those peers' IDs; nodes itself
// and nil when none does, which is the common case and allocates nothing.
func withoutLeavers(nodes []cluster.Node, selfID string) ([]cluster.Node, map[string]struct{}) {
	first := slices.IndexFunc(nodes, func(n cluster.Node) bool { return n.ID != selfID && n.Leaving() })
	if first < 0 {
		return nodes, nil
	}
	kept := slices.Clone(nodes[:first])
	leaving := map[string]struct{}{}
	for _, n := range nodes[first:] {
		if n.ID != selfID && n.Leaving() {
			leaving[n.ID] = struct{}{}
			continue
		}
		kept = append(kept, n)
	}
	return kept, leaving
}

// inAnswer reports whether the last answer normalize made kept a node of
// this ID.
func (m *Manager) inAnswer(id string) bool {
	if c, ok := m.pos[id]; ok && m.emitted[c] == m.normGen {
		return true
	}
	_, ok := m.freshIDs[id]
	return ok
}

// refuse counts and logs an entry peers could not dial, once while the
// membership keeps listing it, and returns rejected with it added.
func (m *Manager) refuse(n cluster.Node, err error, rejected map[clientKey]bool) map[clientKey]bool {
	k := keyOf(n)
	if rejected == nil {
		rejected = map[clientKey]bool{}
	}
	rejected[k] = true
	if !m.rejected[k] {
		m.refused++
		m.opts.logger.Warn("herd/remote: refusing a node the membership listed", "id", n.ID, "address", n.Address.String(), "err", err)
	}
	return rejected
}

// unchanged reports whether an answer lists exactly the current view: the
// same peers at the same addresses with the same metadata, each once (self
// may be listed or not). It allocates nothing, so the periodic query of a
// large, quiet cluster costs a pass over the answer.
func (m *Manager) unchanged(nodes []cluster.Node, cur *Snapshot) bool {
	if m.guard.held != nil || len(m.rejected) > 0 {
		return false // a hold or a refused entry may end with this answer
	}
	m.gen++
	peers := 0
	for _, n := range nodes {
		if n.ID == m.self.ID {
			continue
		}
		i, ok := m.pos[n.ID]
		if !ok || m.marks[i] == m.gen || cur.nodes[i].Address != n.Address || !sameMeta(cur.nodes[i], n) {
			return false
		}
		m.marks[i] = m.gen
		peers++
	}
	return peers == len(cur.nodes)-1
}

// index rebuilds the lookup of snapshot s, whose sort keys are keys, and
// sizes the scratch slices indexed by its nodes.
func (m *Manager) index(s *Snapshot, keys []string) {
	clear(m.pos)
	for i, n := range s.nodes {
		m.pos[n.ID] = i
	}
	m.keys = keys
	if n := len(s.nodes); len(m.marks) < n {
		m.marks, m.slot, m.slotGen, m.emitted = make([]uint64, n), make([]int, n), make([]uint64, n), make([]uint64, n)
	}
}

// applyIf diffs nodes against the current pool, reusing unchanged clients,
// dialling new ones and closing removed ones, and publishes a new snapshot
// when anything changed. With seen set (a query's answer, begun at
// started), it does nothing if anything was applied since the query began.
// Protection mode may keep nodes the answer drops.
func (m *Manager) applyIf(nodes []cluster.Node, seen *uint64, started time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() || (seen != nil && *seen != m.applied) {
		return nil
	}
	m.applied++
	m.lastAnswer = time.Now()
	m.registered = slices.ContainsFunc(nodes, func(n cluster.Node) bool { return n.ID == m.self.ID })
	m.server.setServing(m.registered)
	cur := m.current.Load()
	if len(nodes) == 0 && m.opts.empty == KeepLastView {
		if len(cur.nodes) == 1 {
			// Self alone either way: nothing is kept that the answer would
			// drop. A fresh cluster answers this way until self's
			// registration shows, so it is no cause for a warning.
			m.report(nil)
			return nil
		}
		m.report(ErrEmptyAnswer)
		return ErrEmptyAnswer
	}
	// A peer that says it is leaving gets no new work, and its going is
	// no loss for protection mode to hold.
	nodes, leaving := withoutLeavers(nodes, m.self.ID)
	if m.unchanged(nodes, cur) {
		m.report(nil)
		return nil
	}
	want := m.normalize(nodes, true)
	now := time.Now()
	if m.guard.outage { // the backend answers again (a query, or a push)
		m.guard.outage, m.guard.recovered = false, now
	}
	if m.applied > 1 { // the first answer's nodes were there before the Manager
		m.guard.arrived(m.freshIDs, m.pos, now)
	}
	holds := m.guard.holds
	holdBack, holdErr := m.guard.decide(cur.nodes, m.inAnswer, leaving, now, started)
	if holdBack != nil {
		want = m.normalize(append(want.nodes, holdBack...), false)
		if m.guard.holds != holds {
			select {
			case m.holdBegan <- struct{}{}:
			default:
			}
		}
	}

	// A client is kept for the same node at the same address (want.from);
	// the rest of the current view, which normalize did not emit, is removed.
	next := &Snapshot{nodes: make([]cluster.Node, 0, len(want.nodes)), clients: make([]Client, 0, len(want.nodes)),
		hashes: make([]uint64, 0, len(want.nodes)), maglevUsed: &m.maglevUsed}
	keys := want.keys[:0] // filtered in step with next.nodes
	var dialErr error
	for j, n := range want.nodes {
		if i := want.from[j]; i >= 0 {
			next.nodes = append(next.nodes, n)
			next.clients = append(next.clients, cur.clients[i])
			next.hashes = append(next.hashes, cur.hashes[i])
			keys = append(keys, want.keys[j])
			continue
		}
		c, err := m.dial(n)
		if err != nil {
			dialErr = errors.Join(dialErr, err)
			continue
		}
		next.nodes = append(next.nodes, n)
		next.clients = append(next.clients, c)
		next.hashes = append(next.hashes, selector.IDHash(n.ID))
		keys = append(keys, want.keys[j])
		next.Added = append(next.Added, n)
	}
	for i, n := range cur.nodes {
		if m.emitted[i] != m.normGen {
			next.Removed = append(next.Removed, n)
			m.closeLater(cur.clients[i])
		}
	}
	m.report(errors.Join(holdErr, dialErr))
	if len(next.Added) == 0 && len(next.Removed) == 0 && slices.EqualFunc(next.nodes, cur.nodes, sameMeta) {
		return errors.Join(holdErr, dialErr)
	}
	next.Version = cur.Version + 1
	m.joined += uint64(len(next.Added))
	m.left += uint64(len(next.Removed))
	m.current.Store(next)
	m.index(next, keys)
	if m.maglevUsed.Load() {
		// Selects on this view find its table ready, off the send path.
		m.closers.Go(func() { next.MaglevTable() })
	}
	m.views.Publish(next)
	return errors.Join(holdErr, dialErr)
}

func (m *Manager) holding() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.guard.held != nil
}

// ManagerStats are a Manager's counters, for metrics and status pages.
type ManagerStats struct {
	// Refused counts node entries the membership listed that peers could not
	// dial (see cluster.Node.Validate), each once while it stays listed.
	Refused uint64 `json:"refused"`
	// Holds counts the times protection mode began holding removals.
	Holds uint64 `json:"holds"`
	// Held are the nodes kept in the view, while protection mode holds,
	// although the backend no longer lists them; nil when it does not hold.
	Held []cluster.Node `json:"held"`
	// Joined and Left count the nodes added to and removed from the view
	// since the Manager started (the peers its first query found are joins).
	Joined uint64 `json:"joined"`
	Left   uint64 `json:"left"`
	// QueryFailures counts queries of the backend that failed (the view was
	// kept each time).
	QueryFailures uint64 `json:"queryFailures"`
	// LastAnswer is when an answer from the backend (a query's or a watch
	// push) was last applied, changed or not; zero until the first.
	LastAnswer time.Time `json:"lastAnswer"`
	// Registered says whether that answer listed self: false until the
	// backend shows self's registration, and again if it loses it.
	Registered bool `json:"registered"`
}

// Stats returns the Manager's counters.
func (m *Manager) Stats() ManagerStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return ManagerStats{Refused: m.refused, Holds: m.guard.holds, Held: slices.Clone(m.guard.held),
		Joined: m.joined, Left: m.left, QueryFailures: m.queryFailures.Load(),
		LastAnswer: m.lastAnswer, Registered: m.registered}
}

func sameMeta(a, b cluster.Node) bool {
	if len(a.Meta) != len(b.Meta) {
		return false
	}
	for k, v := range a.Meta {
		if b.Meta[k] != v {
			return false
		}
	}
	return true
}

func (m *Manager) dial(n cluster.Node) (Client, error) {
	if n.ID == m.self.ID {
		return NewSelfClient(n, m.server), nil
	}
	c, err := m.opts.dialer(n)
	if err != nil {
		return nil, fmt.Errorf("remote: dialling peer %s at %s (left out of the view until the next update): %w", n.ID, n.Address, err)
	}
	return c, nil
}

// closeLater flushes a removed node's client without holding up the view.
func (m *Manager) closeLater(c Client) {
	m.closers.Add(1)
	go func() {
		defer m.closers.Done()
		_ = c.Close()
	}()
}

// Close stops following membership and closes every client, flushing
// their queues. Subscribers' channels are closed.
func (m *Manager) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.cancel()
	m.loop.Wait()
	m.mu.Lock()
	cur := m.current.Load()
	m.mu.Unlock()
	m.server.stopServing()
	var err error
	var wg sync.WaitGroup
	var errMu sync.Mutex
	for _, c := range cur.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cerr := c.Close(); cerr != nil {
				errMu.Lock()
				err = errors.Join(err, cerr)
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	m.closers.Wait()
	m.views.Close()
	return err
}
