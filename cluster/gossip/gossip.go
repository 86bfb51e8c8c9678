// Package gossip is herd's embedded peer-to-peer coordinator: no server to
// run. Nodes find each other from a list of seed addresses and then keep
// membership among themselves with github.com/hashicorp/memberlist (SWIM
// failure detection, piggybacked gossip and periodic push/pull
// anti-entropy, the engine inside Consul's and Serf's LAN pools).
//
// Each coordinator is one memberlist member, named at random. Its metadata
// carries herd's node entry once RegisterRemote has run (a member without
// one is an observer and is not listed), so the remote gRPC address travels
// with the gossip and the gossip port is separate from it. A crashed node is
// suspected after a failed probe and removed once its suspicion times out; a
// node that closes leaves gracefully and is removed at once.
//
// Elections and records work too, but with no consensus underneath they are
// unfenced; see Campaign and PutRecord.
//
// It registers itself under the name "gossip":
//
//	import _ "github.com/herd-go/herd/cluster/gossip"
package gossip

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/herd-go/herd/backoff"
	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// section is this backend's part of herd's built-in configuration.
//
//go:embed config.yaml
var section []byte

func init() { backend.Register("gossip", section, DefaultConfig, New) }

// defaultBackoff bounds the delays between attempts to join the seeds
// before the first join succeeds.
var defaultBackoff = cluster.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// Coordinator is one member of a gossip cluster.
type Coordinator struct {
	cfg    Config
	opts   cluster.Options
	ml     *memberlist.Memberlist
	name   string        // this member's memberlist name
	addr   string        // the gossip address others reach it at (Addr)
	settle time.Duration // how long a candidate waits before it claims a leadership

	// life is the lifecycle every backend shares: RegisterRemote's checks,
	// Close's order, the elections book and the published view.
	life backend.Lifecycle
	ctx  context.Context // life's: ends when Close begins the shutdown
	// closing ends as Close begins, so that a RegisterRemote waiting for
	// the seeds gives up at once instead of holding Close up.
	closing     context.Context
	stopWaiting context.CancelFunc
	stopJoin    func() // stops joinLoop and waits for it
	// down is set once memberlist is shut down (or, in a test, crashed):
	// there is nobody left to announce to or to leave.
	down      atomic.Bool
	leaveOnce sync.Once

	announcing sync.Mutex                        // held by announce: memberlist updates one at a time
	updateNode func(timeout time.Duration) error // ml.UpdateNode; tests drop updates
	changed    chan struct{}                     // memberlist saw a join, leave or update
	joined     chan struct{}                     // closed once a seed has answered (at once with no seeds)
	joinErr    error                             // the last failed join's error, until one succeeds; under mu

	tableMu sync.Mutex
	table   map[string]memberlist.Node // live members by name, copied from memberlist's events

	mu        sync.Mutex
	self      *cluster.Node     // this member's entry; nil until registered, or once withdrawn
	campaigns map[string]uint64 // election → the term this node claims; 0 while campaigning
	state     state             // records and terms, replicated by gossip
	leading   map[string]leadership
	// clash is why this node's registration was withdrawn: another live
	// member holds its ID (see yield). Reported by Err and QueryRemoteNodes
	// until a RegisterRemote succeeds again.
	clash      error
	duplicates atomic.Uint64

	malformed backend.Malformed
	// gossiped wakes whoever follows members' entries, records or terms:
	// it is closed and replaced on every change.
	gossiped chan struct{}
}

// entry is what a member's memberlist metadata holds: herd's node entry
// and the elections the node campaigns in.
type entry struct {
	Node      json.RawMessage   `json:"node"`
	Campaigns map[string]uint64 `json:"campaigns,omitempty"`
}

// New starts a gossip member at cfg's bind address and joins cfg.Seeds in the
// background, retrying with backoff until it reaches one of them, then again
// every cfg.RejoinInterval. It returns once the member listens; the list is
// only self until a seed answers. Of opts, it uses WithLogger and
// WithBackoff (the join retries: default 100ms doubling to 5s).
func New(ctx context.Context, cfg Config, opts ...cluster.Option) (*Coordinator, error) {
	seeds, keys, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gossip: not starting: the context has already ended: %w", err)
	}
	o := backend.NewOptions(opts...)
	o.Backoff = o.Backoff.Or(defaultBackoff)

	c := &Coordinator{
		cfg:       cfg,
		opts:      o,
		name:      "herd-" + cluster.NewID(),
		changed:   make(chan struct{}, 1),
		joined:    make(chan struct{}),
		table:     map[string]memberlist.Node{},
		campaigns: map[string]uint64{},
		leading:   map[string]leadership{},
		gossiped:  make(chan struct{}),
		state:     state{Records: map[string]record{}, Terms: map[string]uint64{}},
	}
	mc := profile(cfg.Profile)
	mc.Name = c.name
	mc.BindAddr, mc.BindPort = cfg.BindAddr, cfg.BindPort
	mc.AdvertiseAddr, mc.AdvertisePort = cfg.AdvertiseAddr, cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = cfg.BindPort // memberlist replaces 0 with the port it bound
	}
	mc.Label = cfg.ClusterName
	mc.Transport = cfg.Transport
	if len(keys) > 0 {
		ring, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return nil, &cluster.ConfigError{Key: key("keys"), Value: "(hidden)", Accepted: "valid AES keys", Err: err}
		}
		mc.Keyring = ring
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Delegate = delegate{c}
	mc.Events = events{c}
	mc.Logger = log.New(logWriter{o.Logger}, "", 0)
	// A claim waits out a few gossip rounds, so that every campaign the
	// others started at the same moment has reached this node.
	c.settle = 5 * mc.GossipInterval

	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: listening on %s: %w (check cluster.gossip.bindAddr and bindPort (SW_CLUSTER_GOSSIP_BIND_ADDR, SW_CLUSTER_GOSSIP_BIND_PORT), and set advertiseAddr when binding to a wildcard on a host with no private IP)",
			net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort)), err)
	}
	c.ml = ml
	// Read once, now: memberlist rewrites its local node in place on every
	// update, unlocked, so reading it later races with announce.
	local := ml.LocalNode()
	c.addr = net.JoinHostPort(local.Addr.String(), strconv.Itoa(int(local.Port)))
	c.updateNode = ml.UpdateNode
	c.life.Init("gossip", registrar{c}, cfg.LeaveTimeout)
	c.ctx = c.life.Context()
	c.closing, c.stopWaiting = context.WithCancel(context.Background())
	c.refresh()
	c.life.Go(c.viewLoop)
	if len(seeds) == 0 {
		close(c.joined) // the first node of a new cluster: nobody to ask
	}
	joinCtx, stopJoin := context.WithCancel(c.ctx)
	joined := make(chan struct{})
	c.stopJoin = func() { stopJoin(); <-joined }
	go func() {
		defer close(joined)
		c.joinLoop(joinCtx, seeds)
	}()
	return c, nil
}

// Addr is the gossip address other nodes reach this member at, for their
// seed lists.
func (c *Coordinator) Addr() string { return c.addr }

// Logger is the logger the coordinator was given (cluster.WithLogger); a
// Manager or shard group built over it logs there too unless told otherwise.
func (c *Coordinator) Logger() *slog.Logger { return c.opts.Logger }

// Stats returns the coordinator's counters.
func (c *Coordinator) Stats() cluster.Stats {
	return cluster.Stats{Malformed: c.malformed.Count(), DuplicateIDs: c.duplicates.Load()}
}

// Err is nil while this node is registered or has not tried to be. After
// another live member was found holding this node's ID at another address
// (two processes that registered one ID at the same moment, or the two
// sides of a partition that healed), the member with the higher memberlist
// name withdraws its entry, ends its leaderships and campaigns, and its Err
// (and QueryRemoteNodes, so that a remote.Manager reports it) returns an
// error wrapping cluster.ErrDuplicateID, until a RegisterRemote succeeds.
func (c *Coordinator) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clash
}

// joinLoop joins the seeds: with backoff until one answers, then every
// RejoinInterval, which heals partitions both sides gave up on.
func (c *Coordinator) joinLoop(ctx context.Context, seeds []string) {
	if len(seeds) == 0 {
		return
	}
	b := backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
	for first := true; ; {
		n, err := c.ml.Join(seeds)
		if n > 0 {
			b.Reset()
			if first {
				c.mu.Lock()
				c.joinErr = nil
				c.mu.Unlock()
				close(c.joined)
			}
			if first && c.selfID() != "" {
				// Registered while this first join was in flight: the
				// entry the seeds got may predate it, and the update
				// was made while this member knew nobody to send it to.
				c.announce()
			}
			first = false
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.cfg.RejoinInterval):
			}
			continue
		}
		if first {
			c.mu.Lock()
			c.joinErr = err
			c.mu.Unlock()
		}
		c.opts.Logger.Warn("gossip: no seed answered; trying again", "seeds", c.cfg.Seeds, "err", flat(err))
		if !b.Wait(ctx) {
			return
		}
	}
}

// viewLoop publishes the member list after each change memberlist reports.
// memberlist calls its event delegate with its node lock held, so the list
// is read here rather than there.
func (c *Coordinator) viewLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.changed:
			c.refresh()
		}
	}
}

// poke asks viewLoop to read the members again.
func (c *Coordinator) poke() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// member is a decoded memberlist member.
type member struct {
	name string
	node cluster.Node
	e    entry
}

// read decodes the live members that carry a node entry, one per node ID:
// two members claiming one ID (a duplicate process that registered before
// it saw the other) resolve to the lower memberlist name on every node.
func (c *Coordinator) read() map[string]member {
	c.tableMu.Lock()
	table := slices.Collect(maps.Values(c.table))
	c.tableMu.Unlock()
	out := map[string]member{}
	for _, m := range table {
		if len(m.Meta) == 0 {
			continue // an observer, or not registered yet
		}
		var e entry
		err := json.Unmarshal(m.Meta, &e)
		var n cluster.Node
		if err == nil {
			n, err = backend.DecodeNode(e.Node)
		}
		if err != nil {
			h := fnv.New64a()
			h.Write(m.Meta)
			if c.malformed.Report(m.Name, h.Sum64()) {
				c.opts.Logger.Warn("gossip: skipping a member whose metadata is not a herd node entry", "member", m.Name, "addr", m.Address(), "err", err)
			}
			continue
		}
		c.malformed.Forget(m.Name)
		if old, ok := out[n.ID]; ok && old.name < m.Name {
			continue
		}
		out[n.ID] = member{name: m.Name, node: n, e: e}
	}
	return out
}

// snapshot returns the members as they are now and a channel closed at the
// next change. The channel is taken before the members are read, so that a
// change landing while they are read still closes it; taken after, the
// change could be missed until the next one.
func (c *Coordinator) snapshot() (map[string]member, <-chan struct{}) {
	c.mu.Lock()
	wake := c.gossiped
	c.mu.Unlock()
	return c.read(), wake
}

// peers returns the other live members, to push a write to.
func (c *Coordinator) peers() []*memberlist.Node {
	c.tableMu.Lock()
	defer c.tableMu.Unlock()
	out := make([]*memberlist.Node, 0, len(c.table))
	for _, m := range c.table {
		if m.Name != c.name {
			out = append(out, &m)
		}
	}
	return out
}

// refresh reads the members, publishes the node list, folds the terms
// they claim into the Lamport clocks, and wakes elections and watchers.
func (c *Coordinator) refresh() {
	ms := c.read()
	nodes := make([]cluster.Node, 0, len(ms))
	c.mu.Lock()
	for _, m := range ms {
		nodes = append(nodes, m.node)
		for name, term := range m.e.Campaigns {
			c.state.Terms[name] = max(c.state.Terms[name], term)
		}
	}
	selfID := ""
	if c.self != nil {
		selfID = c.self.ID
	}
	c.checkLeaderships(ms)
	if c.yieldLocked(ms) != nil {
		c.life.Go(c.announce)
	}
	c.wakeLocked()
	c.mu.Unlock()
	c.life.View.Publish(nodes, selfID)
}

// wakeLocked wakes everyone waiting for gossip. c.mu is held.
func (c *Coordinator) wakeLocked() {
	close(c.gossiped)
	c.gossiped = make(chan struct{})
}

// RegisterWait bounds how long RegisterRemote waits for a seed to answer
// when its context has no deadline.
const RegisterWait = 10 * time.Second

// RegisterRemote puts self's entry in this member's metadata and gossips
// it. It refuses an ID that a live member at another address holds.
//
// To know which IDs are held, it first waits for the seeds: until one has
// answered (at once for a node with no seeds, the first of a new cluster),
// bounded by ctx or, without a deadline, RegisterWait. If none answers it
// returns an error naming SW_CLUSTER_GOSSIP_SEEDS and registers nothing.
// Two processes registering one ID at the same moment may each find the
// ID free; once each has gossiped its entry, the one with the higher
// memberlist name withdraws (here, with an error wrapping
// cluster.ErrDuplicateID, or later through Err), so one process keeps the
// ID and nothing leads under it twice.
func (c *Coordinator) RegisterRemote(ctx context.Context, self cluster.Node) error {
	return c.life.RegisterRemote(ctx, self)
}

// registrar is the coordinator's part of backend.Lifecycle. The entry lives
// in this member's memberlist metadata, which memberlist gossips for as
// long as the member lives: there is nothing to supervise.
type registrar struct{ c *Coordinator }

func (r registrar) Register(ctx context.Context, self cluster.Node) error {
	c := r.c
	if err := c.AwaitJoin(ctx); err != nil {
		return err
	}
	if holder, ok := c.read()[self.ID]; ok && holder.name != c.name {
		if err := backend.CheckTakeover(self, holder.node); err != nil {
			return err
		}
	}
	data, err := backend.EncodeNode(self)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.self = &self
	if _, err := c.metaLocked(data); err != nil {
		c.self = nil
		c.mu.Unlock()
		return err
	}
	c.clash = nil
	c.mu.Unlock()
	c.announce() // exchanges state with every member: a rival's entry is here after it
	c.mu.Lock()
	err = c.yieldLocked(c.read())
	c.mu.Unlock()
	if err != nil {
		c.announce()
		return err
	}
	c.poke()
	return nil
}

func (registrar) Supervise(ctx context.Context, _ cluster.Node) { <-ctx.Done() }

// errDown is Update's answer once memberlist is shut down.
var errDown = errors.New("gossip: memberlist is shut down")

// Update gossips self's entry as given (with the leaving mark, from
// Close), unless the registration was withdrawn meanwhile.
func (r registrar) Update(_ context.Context, self cluster.Node) error {
	c := r.c
	if c.down.Load() {
		return errDown
	}
	c.mu.Lock()
	if c.self == nil || c.self.ID != self.ID {
		c.mu.Unlock()
		return fmt.Errorf("gossip: node %s was withdrawn; nothing to update", self.ID)
	}
	c.self = &self
	c.mu.Unlock()
	c.announce()
	return nil
}

// Deregister leaves the cluster gracefully: the others drop this node as
// soon as the leave reaches them, within LeaveTimeout.
func (r registrar) Deregister(context.Context, cluster.Node) error { return r.c.leave() }

// leave leaves the cluster, once; later calls (and a member already shut
// down) return nil.
func (c *Coordinator) leave() (err error) {
	c.leaveOnce.Do(func() {
		if c.down.Load() {
			return
		}
		if lerr := c.ml.Leave(c.cfg.LeaveTimeout); lerr != nil {
			err = fmt.Errorf("gossip: leaving: %w (the others will find this node dead instead)", lerr)
		}
	})
	return err
}

// AwaitJoin waits until a seed has answered and this member has the
// seed's view of the members, bounded by ctx or, without a deadline,
// RegisterWait. It returns at once with no seeds (the first node of a new
// cluster). If no seed answers, the error names SW_CLUSTER_GOSSIP_SEEDS and
// the last join error. RegisterRemote calls it first; an observer (such as
// the herd command) calls it before it reads the members.
func (c *Coordinator) AwaitJoin(ctx context.Context) error {
	select {
	case <-c.joined:
		return nil
	default:
	}
	began := time.Now()
	wait := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeout(ctx, RegisterWait)
		defer cancel()
	}
	select {
	case <-c.joined:
		return nil
	case <-c.closing.Done():
		return cluster.ErrClosed
	case <-wait.Done():
		c.mu.Lock()
		last := c.joinErr
		c.mu.Unlock()
		return fmt.Errorf("gossip: no seed answered in %s (cluster.gossip.seeds, SW_CLUSTER_GOSSIP_SEEDS = %q; last error: %s), so this node cannot tell whether its ID is free and did not register: start a seed or correct the list, or leave it empty on the first node of a new cluster: %w",
			time.Since(began).Round(time.Millisecond), c.cfg.Seeds, flat(last), wait.Err())
	}
}

// yieldLocked withdraws this node's registration if another live member at
// another address holds its ID under a lower memberlist name: the rule
// read applies on every node, so both claimants agree on who keeps the ID.
// It ends this node's leaderships and campaigns and returns the clash
// (nil when there is none). c.mu is held; the caller announces the change.
func (c *Coordinator) yieldLocked(ms map[string]member) error {
	if c.self == nil {
		return nil
	}
	holder, ok := ms[c.self.ID]
	if !ok || holder.name >= c.name {
		return nil
	}
	clash := backend.CheckTakeover(*c.self, holder.node) // nil at our own address
	if clash == nil {
		return nil
	}
	c.duplicates.Add(1)
	c.opts.Logger.Error("gossip: another live member holds this node's ID; this node withdraws its registration", "id", c.self.ID, "ours", c.self.Address, "theirs", holder.node.Address, "member", holder.name)
	c.clash = clash
	c.self = nil
	c.life.Withdraw()
	// The book holds every campaign and leadership (c.leading's lose
	// functions are its entries'): ending them there ends them all.
	clear(c.leading)
	clear(c.campaigns)
	c.life.Elections.EndAll(fmt.Errorf("%w: %w", cluster.ErrSessionLost, clash))
	return clash
}

// metaLocked encodes this member's metadata with node as its entry (nil:
// the registered node's), checking memberlist's size limit. c.mu is held.
func (c *Coordinator) metaLocked(node []byte) ([]byte, error) {
	if c.self == nil {
		return nil, nil
	}
	if node == nil {
		var err error
		if node, err = backend.EncodeNode(*c.self); err != nil {
			return nil, err
		}
	}
	meta, err := json.Marshal(entry{Node: node, Campaigns: c.campaigns})
	if err != nil {
		return nil, err
	}
	if len(meta) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("gossip: this node's entry with its %d campaigns is %d bytes; memberlist carries at most %d: use fewer or shorter metadata values and election names",
			len(c.campaigns), len(meta), memberlist.MetaMaxSize)
	}
	return meta, nil
}

// announce gossips this member's metadata after a change, waiting up to
// c.settle for the update to have been sent to the others, then exchanges
// state with every live member over TCP (memberlist's push/pull), so that
// each has the change at once. Gossip alone is only likely to reach every
// member within a few rounds: its targets include members that left in
// the last seconds, and an update made while this member knew nobody
// waits for a later round. Errors are not returned: the next push/pull
// carries the change.
func (c *Coordinator) announce() {
	// memberlist's UpdateNode reads its own node's state unlocked while it
	// writes it: one update at a time.
	if c.down.Load() {
		return
	}
	c.announcing.Lock()
	defer c.announcing.Unlock()
	defer c.poke() // this member's own entry changed
	c.updateMeta()
	var addrs []string
	for _, m := range c.peers() {
		addrs = append(addrs, m.Address())
	}
	if len(addrs) > 0 {
		if _, err := c.ml.Join(addrs); err != nil {
			c.opts.Logger.Debug("gossip: exchanging state after an update", "err", err)
		}
	}
}

// updateAttempts bounds how often updateMeta gives memberlist the same
// update; each attempt waits up to c.settle.
const updateAttempts = 5

// updateMeta has memberlist take this member's metadata and gossip it,
// and makes sure it took. memberlist's UpdateNode numbers the update
// (its incarnation) before it locks its node table; a refutation of a
// suspicion of this member landing in between takes a higher number, and
// memberlist then drops the update without a word. The member would go on
// gossiping its old entry for good: a withdrawn claim would hold its
// election, with every other candidate waiting, until the next update of
// this member. memberlist gives its copy of this member to the events
// delegate, into c.table, as it takes an update, so the table says
// whether memberlist holds the entry as it is now; if not, the update is
// made again (also when the entry changed after it was given, which costs
// one update more). c.announcing is held.
func (c *Coordinator) updateMeta() {
	for attempt := 1; ; attempt++ {
		if err := c.updateNode(c.settle); err != nil {
			c.opts.Logger.Debug("gossip: an update is still being gossiped", "err", err)
		}
		if c.ctx.Err() != nil || c.tookMeta() {
			return
		}
		if attempt == updateAttempts {
			c.opts.Logger.Warn("gossip: memberlist has not taken this member's new entry; the others see its previous one until its next update", "attempts", attempt)
			return
		}
		c.opts.Logger.Debug("gossip: memberlist's copy of this member's entry is not the current one (it dropped the update, or the entry changed meanwhile); updating again", "attempt", attempt)
	}
}

// tookMeta reports whether memberlist's copy of this member carries the
// metadata this coordinator holds now.
func (c *Coordinator) tookMeta() bool {
	c.mu.Lock()
	want, err := c.metaLocked(nil)
	c.mu.Unlock()
	if err != nil {
		return true // refused where it was set; nothing to retry
	}
	c.tableMu.Lock()
	defer c.tableMu.Unlock()
	return bytes.Equal(c.table[c.name].Meta, want)
}

// QueryRemoteNodes returns the members this node knows now. Gossip has no
// authority to ask, so this is the local view.
func (c *Coordinator) QueryRemoteNodes(ctx context.Context) ([]cluster.Node, error) {
	if c.ctx.Err() != nil {
		return nil, cluster.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	ms := c.read()
	nodes := make([]cluster.Node, 0, len(ms))
	for _, m := range ms {
		nodes = append(nodes, m.node)
	}
	return backend.Sorted(nodes, c.selfID()), nil
}

// Watch pushes the member list after every change.
func (c *Coordinator) Watch(ctx context.Context) <-chan []cluster.Node {
	return c.life.View.Subscribe(ctx)
}

func (c *Coordinator) selfID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.self == nil {
		return ""
	}
	return c.self.ID
}

// Close resigns every leadership, tells the others this node is leaving,
// leaves the cluster gracefully (the others drop this node as soon as the
// leave reaches them, within LeaveTimeout) and stops. It is safe to call
// more than once.
func (c *Coordinator) Close() error {
	c.stopWaiting()
	// A join still in progress (bounded by the profile's TCP timeout) is
	// let finish: a member that has not yet learnt of any other would
	// leave without telling anyone, and be found dead only seconds later.
	c.stopJoin()
	return c.life.Close(func() error {
		// A member that never registered (an observer) leaves too, so that
		// the others do not probe it and find it dead.
		err := c.leave()
		c.down.Store(true)
		if serr := c.ml.Shutdown(); serr != nil {
			err = errors.Join(err, serr)
		}
		c.mu.Lock()
		c.wakeLocked()
		c.mu.Unlock()
		return err
	})
}

// delegate is this coordinator as memberlist's Delegate: metadata, and
// the replicated state (records and terms).
type delegate struct{ c *Coordinator }

func (d delegate) NodeMeta(limit int) []byte {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	meta, err := d.c.metaLocked(nil)
	if err != nil || len(meta) > limit {
		return nil // refused earlier, where the caller sees the error
	}
	return meta
}

func (d delegate) NotifyMsg(msg []byte) { d.c.merge(bytes.Clone(msg)) }

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

func (d delegate) LocalState(join bool) []byte {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	data, _ := json.Marshal(d.c.state)
	return data
}

func (d delegate) MergeRemoteState(buf []byte, join bool) { d.c.merge(buf) }

// events keeps the coordinator's copy of the member table. memberlist
// calls it with its node lock held, the only moment its *Node may be read
// (it rewrites them in place), so each is copied here and the rest of the
// work is left to viewLoop.
type events struct{ c *Coordinator }

func (e events) NotifyJoin(n *memberlist.Node)   { e.c.note(n, false) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.c.note(n, true) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.c.note(n, false) }

func (c *Coordinator) note(n *memberlist.Node, gone bool) {
	c.tableMu.Lock()
	if gone {
		delete(c.table, n.Name)
	} else {
		m := *n
		m.Meta = bytes.Clone(n.Meta)
		m.Addr = slices.Clone(n.Addr)
		c.table[n.Name] = m
	}
	c.tableMu.Unlock()
	c.poke()
}

// flat puts err on one line: memberlist's join errors are lists, one
// error a line, which a log line would show as escapes.
func flat(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// logWriter passes memberlist's log lines to the slog logger: its
// "[ERR]" and "[WARN]" lines as warnings, the rest at debug level.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	// memberlist writes "[WARN] memberlist: text"; the level goes to slog
	// and the rest follows one prefix, not two.
	if i := strings.Index(line, "["); i >= 0 {
		tag, rest, _ := strings.Cut(line[i:], "] ")
		if tag == "[ERR" || tag == "[WARN" {
			level = slog.LevelWarn
		}
		line = strings.TrimPrefix(rest, "memberlist: ")
	}
	w.l.Log(context.Background(), level, "gossip: memberlist: "+line)
	return len(p), nil
}
