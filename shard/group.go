package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/herd-go/herd/backoff"
	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/latest"
)

// Coordinator is what a Group needs of a backend: membership, leader
// election and records. A cluster.Coordinator is one.
type Coordinator interface {
	cluster.Watcher
	cluster.Elector
	cluster.Records
}

// registrant and campaigner are what a coordinator built on
// backend.Lifecycle (every one in this module) also offers; Join checks its
// arguments with them when it can.
type registrant interface{ RegisteredID() string }
type campaigner interface{ Campaigning(election string) bool }

// Option configures a Group: Join takes any number, later ones winning.
// With none, every default applies.
type Option func(*options)

// WithName names the group's election and the record its table is kept in
// (cluster.CheckRecord's rule); default "slots". Groups of one name must
// agree on the number of slots.
func WithName(name string) Option { return func(o *options) { o.Name = name } }

// WithSlots sets the number of slots, 1 to MaxSlots; default DefaultSlots.
func WithSlots(n int) Option { return func(o *options) { o.Slots = n } }

// WithRebalanceDelay sets how long the view must stay unchanged before the
// leader moves slots, so that a rolling restart moves each slot once rather
// than twice; default 2s. The first table is computed at once.
func WithRebalanceDelay(d time.Duration) Option { return func(o *options) { o.RebalanceDelay = d } }

// WithOwnershipTTL bounds how long a node keeps its slots without reading
// the table: a node that could not read it for that long gives up every
// slot, and the leader gives the slots of a node gone from the view to
// others OwnershipTTL (plus a margin) after it revoked them, so a crashed
// or cut-off node never shares a slot. Default 5s, at least 10ms.
func WithOwnershipTTL(d time.Duration) Option { return func(o *options) { o.OwnershipTTL = d } }

// WithLogger sends the group's warnings to l; by default they go to the
// coordinator's logger (cluster.WithLogger), else nowhere.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.Logger = l } }

// options are a Group's settings, after its Options are applied.
type options struct {
	Name           string
	Slots          int
	RebalanceDelay time.Duration
	OwnershipTTL   time.Duration
	Logger         *slog.Logger
}

func (o options) withDefaults() (options, error) {
	if o.Name == "" {
		o.Name = "slots"
	}
	if err := cluster.CheckRecord(o.Name); err != nil {
		return o, fmt.Errorf("shard: WithName: %w", err)
	}
	if o.Slots == 0 {
		o.Slots = DefaultSlots
	}
	if o.Slots < 1 || o.Slots > MaxSlots {
		return o, fmt.Errorf("shard: WithSlots(%d): want 1 to %d", o.Slots, MaxSlots)
	}
	if o.RebalanceDelay == 0 {
		o.RebalanceDelay = 2 * time.Second
	}
	if o.OwnershipTTL == 0 {
		o.OwnershipTTL = 5 * time.Second
	}
	if o.RebalanceDelay < 0 || o.OwnershipTTL < 10*time.Millisecond {
		return o, fmt.Errorf("shard: WithRebalanceDelay(%s) must not be negative and WithOwnershipTTL(%s) at least 10ms", o.RebalanceDelay, o.OwnershipTTL)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// releaseMargin is added to OwnershipTTL before the leader treats the
// slots of a node gone from the view as released: the node's own timer and
// the leader's run on different machines' clocks.
func releaseMargin(ttl time.Duration) time.Duration { return ttl / 5 }

// left is the acknowledgement a node writes when it closes: it holds
// nothing, whatever the leader revokes from it later.
const left = math.MaxUint64

// Group is this node's membership in a sharded group: it follows the slot
// table, owns the slots the table gives it, and campaigns to lead; while it
// leads, it keeps the table balanced over the alive members.
//
// The members are the nodes of the coordinator's view that have joined the
// group: a Group announces itself in the table's record when it first reads
// it, so nodes of the view that run no Group of this name get no slots.
type Group struct {
	c       Coordinator
	self    string
	opts    options
	mapping Mapping

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // asks the follower to read the table again

	mu       sync.Mutex
	cur      state // the table as last read; owners nil before the first
	owned    Set
	holds    map[int]*hold // per owned slot, once held
	draining int           // lost slots still held
	readAt   time.Time     // start of the last successful read
	readErr  error         // the last read's error; nil once a read succeeds
	gaveUp   time.Time     // when giveUp last dropped every slot
	drop     *time.Timer   // gives up every slot OwnershipTTL after readAt
	leading  uint64        // the term while this node leads, else 0
	closed   bool
	sets     latest.Value[Set]
}

// hold tracks the work in progress on one slot.
type hold struct {
	ctx    context.Context
	cancel context.CancelFunc
	active int
}

// Join starts this node's part in the group: self is the ID of the node c
// registered (RegisterRemote comes first). It returns at once; the node
// owns slots once it has read a table that gives it some (see Changes).
func Join(c Coordinator, self string, opts ...Option) (*Group, error) {
	given := options{Logger: cluster.LoggerOf(c)} // given once, to cluster.New
	for _, opt := range opts {
		if opt != nil {
			opt(&given)
		}
	}
	o, err := given.withDefaults()
	if err != nil {
		return nil, err
	}
	if self == "" {
		return nil, errors.New("shard: Join needs the ID of the node the coordinator registered")
	}
	if c == nil {
		return nil, errors.New("shard: Join needs a coordinator")
	}
	// Mistakes that would leave the node owning nothing for good, with no
	// error anywhere: refused here, where they are made.
	if r, ok := c.(registrant); ok {
		switch id := r.RegisteredID(); {
		case id == "":
			return nil, errors.New("shard: Join before RegisterRemote: the coordinator has registered no node, so the group could never give this node a slot; call RegisterRemote(ctx, self) first, then Join with self.ID")
		case id != self:
			return nil, fmt.Errorf("shard: Join for node %q, but the coordinator registered node %q: a group owns slots for the registered node; pass its ID (the self given to RegisterRemote)", self, id)
		}
	}
	if cp, ok := c.(campaigner); ok && cp.Campaigning(o.Name) {
		return nil, fmt.Errorf("shard: group %q: this coordinator already campaigns in (or leads) election %q, and a group campaigns in the election of its own name; name the group differently (WithName) or resign that election first", o.Name, o.Name)
	}
	m, _ := NewMapping(o.Slots)
	g := &Group{c: c, self: self, opts: o, mapping: m, wake: make(chan struct{}, 1), holds: map[int]*hold{}}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.sets.Publish(Set{})
	g.wg.Go(g.follow)
	g.wg.Go(g.campaign)
	return g, nil
}

// Mapping is the group's key → slot mapping.
func (g *Group) Mapping() Mapping { return g.mapping }

// SlotOf returns the slot of a key: g.Mapping().Of(key).
func (g *Group) SlotOf(key string) int { return g.mapping.Of(key) }

// Owned returns the slots this node owns now.
func (g *Group) Owned() Set {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.owned
}

// Owner returns the owner of slot as this node last read the table: a
// node ID, or "" while the slot moves or before the first table.
func (g *Group) Owner(slot int) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if slot < 0 || slot >= len(g.cur.owners) {
		return ""
	}
	return g.cur.owners[slot]
}

// Table returns the table as this node last read it.
func (g *Group) Table() Table {
	g.mu.Lock()
	defer g.mu.Unlock()
	return Table{Epoch: g.cur.epoch, Owners: slices.Clone(g.cur.owners)}
}

// Leading returns the election term while this node leads the group.
func (g *Group) Leading() (term uint64, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leading, g.leading != 0
}

// Changes streams this node's gains and losses of slots until ctx ends or
// the group closes: first the slots owned now (as gains, if any), then
// every change. Work on a lost slot must stop; Hold makes that precise.
func (g *Group) Changes(ctx context.Context) <-chan Change {
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(g.ctx, cancel)
	sets := g.sets.Subscribe(sctx)
	out := make(chan Change)
	g.wg.Go(func() {
		defer close(out)
		defer stop()
		defer cancel()
		var last Set
		for set := range sets {
			gained, lost := diff(last, set)
			if len(gained) == 0 && len(lost) == 0 {
				continue
			}
			select {
			case out <- Change{Epoch: set.epoch, Gained: gained, Lost: lost, Owned: set}:
				last = set
			case <-sctx.Done():
				return
			}
		}
	})
	return out
}

// Hold reports whether this node owns slot and, if so, keeps it from being
// handed to another node until release is called: the node acknowledges a
// revocation only once every hold on the revoked slots is released. The
// context ends when the slot is revoked (or the group closes), so work
// that follows it stops in time. Call release exactly once.
func (g *Group) Hold(slot int) (ctx context.Context, release func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.owned.Contains(slot) {
		return nil, func() {}, false
	}
	h := g.holds[slot]
	if h == nil {
		h = &hold{}
		h.ctx, h.cancel = context.WithCancel(g.ctx)
		g.holds[slot] = h
	}
	h.active++
	var once sync.Once
	return h.ctx, func() { once.Do(func() { g.release(slot, h) }) }, true
}

func (g *Group) release(slot int, h *hold) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h.active--
	if h.active == 0 && g.holds[slot] != h { // the slot was lost meanwhile
		g.draining--
		if g.draining == 0 {
			g.nudge()
		}
	}
}

func (g *Group) nudge() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Close gives up every slot (ending the holds' contexts and waiting up to
// OwnershipTTL for them to be released), tells the leader it left, resigns
// if it leads, and stops. Close the coordinator after the group.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()
	g.cancel()
	g.wg.Wait()
	g.mu.Lock()
	g.setOwned(Set{})
	if g.drop != nil {
		g.drop.Stop()
	}
	draining := g.draining
	g.mu.Unlock()
	deadline := time.Now().Add(g.opts.OwnershipTTL)
	for draining > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		g.mu.Lock()
		draining = g.draining
		g.mu.Unlock()
	}
	g.sets.Close()
	if draining > 0 {
		return fmt.Errorf("shard: %d lost slots were still held %s after Close began; the leader gives them away once this node leaves the view", draining, g.opts.OwnershipTTL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.OwnershipTTL)
	defer cancel()
	// A server that fails one write (the Nacos server's store times out on
	// a lock just after a restart) is tried again until OwnershipTTL: the
	// other way the slots move takes longer than that.
	retry := backoff.New(50*time.Millisecond, time.Second)
	err := g.acknowledge(ctx, left)
	for err != nil && !errors.Is(err, cluster.ErrClosed) && retry.Wait(ctx) {
		g.opts.Logger.Warn("shard: telling the leader this node left; retrying", "group", g.opts.Name, "err", err)
		err = g.acknowledge(ctx, left)
	}
	if err != nil && !errors.Is(err, cluster.ErrClosed) {
		return fmt.Errorf("shard: telling the leader this node left: %w (it gives the slots away %s after this node leaves the view)", err, g.opts.OwnershipTTL+releaseMargin(g.opts.OwnershipTTL))
	}
	return nil
}

// setOwned makes set the owned slots, ending the holds on the lost ones.
// The caller holds g.mu.
func (g *Group) setOwned(set Set) {
	for slot, h := range g.holds {
		if set.Contains(slot) {
			continue
		}
		delete(g.holds, slot)
		h.cancel()
		if h.active > 0 {
			g.draining++
		}
	}
	g.owned = set
	g.sets.Publish(set)
}

// follow reads the table when it changes, when asked, and at least every
// quarter of OwnershipTTL, and applies it.
func (g *Group) follow() {
	versions := g.c.WatchRecord(g.ctx, g.opts.Name)
	tick := time.NewTicker(g.opts.OwnershipTTL / 4)
	defer tick.Stop()
	for {
		g.refresh()
		select {
		case <-g.ctx.Done():
			return
		case _, open := <-versions:
			if !open {
				if g.ctx.Err() != nil {
					return
				}
				versions = nil // the coordinator closed: the ticker still reads, and fails
			}
		case <-g.wake:
		case <-tick.C:
		}
	}
}

// refresh reads the table once and applies it: ownership, then the
// acknowledgement the leader may be waiting for.
func (g *Group) refresh() {
	ctx, cancel := context.WithTimeout(g.ctx, g.opts.OwnershipTTL/2)
	defer cancel()
	start := time.Now()
	data, version, err := g.c.GetRecord(ctx, g.opts.Name)
	var st state
	if err == nil && version != "" {
		st, err = decode(data)
	}
	if err != nil {
		if g.ctx.Err() == nil {
			g.opts.Logger.Warn("shard: reading the slot table", "group", g.opts.Name, "err", err)
		}
		g.mu.Lock()
		g.readErr = err
		g.mu.Unlock()
		return // the drop timer gives everything up if this lasts
	}
	if version == "" {
		st = newState(g.opts.Slots)
	}
	if len(st.owners) != g.opts.Slots {
		g.opts.Logger.Error("shard: the published table has another slot count than this node's WithSlots; this node owns nothing", "group", g.opts.Name, "table", len(st.owners), "options", g.opts.Slots)
		st = newState(g.opts.Slots)
	}
	if st.acks[g.self] == left {
		// Our ID's acknowledgement from an earlier life: take it back before
		// owning anything, or the leader would think we hold nothing.
		if err := g.acknowledge(ctx, st.epoch); err != nil {
			return
		}
		g.nudge()
		return
	}

	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	if st.epoch < g.cur.epoch {
		// An older table than one already applied: a read served from a
		// lagging cache (Nacos), or a table lost with the server's data.
		// Either way it is no ground to own anything; if it lasts, the drop
		// timer gives every slot up and the next table is taken as it is.
		g.mu.Unlock()
		return
	}
	g.cur = st
	g.readAt, g.readErr = start, nil
	if g.drop == nil {
		g.drop = time.AfterFunc(g.opts.OwnershipTTL, g.giveUp)
	} else {
		g.drop.Reset(g.opts.OwnershipTTL - time.Since(start))
	}
	g.setOwned(newSet(st.epoch, len(st.owners), func(s int) bool { return st.owners[s] == g.self }))
	_, present := st.acks[g.self]
	mustAck := g.draining == 0 && (owes(st, g.self) || !present && version != "")
	g.mu.Unlock()
	if mustAck {
		if err := g.acknowledge(ctx, st.epoch); err != nil && !errors.Is(err, cluster.ErrVersionConflict) {
			g.opts.Logger.Warn("shard: acknowledging a revocation", "group", g.opts.Name, "err", err)
		}
	}
}

// owes reports whether st revokes from id a slot id has not acknowledged.
func owes(st state, id string) bool {
	for s, from := range st.from {
		if from == id && st.revokedAt[s] > st.acks[id] {
			return true
		}
	}
	return false
}

// giveUp drops every slot: the table has not been read for OwnershipTTL.
func (g *Group) giveUp() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.readAt) < g.opts.OwnershipTTL {
		return
	}
	g.opts.Logger.Warn("shard: no current slot table could be read for OwnershipTTL; giving up every slot until one can", "group", g.opts.Name, "ttl", g.opts.OwnershipTTL)
	g.setOwned(Set{epoch: g.owned.epoch})
	g.cur = state{} // whatever is read next is taken as it is
	g.gaveUp = time.Now()
}

// Reason says why this node owns no slot of the group, for reports: no
// table read yet, or none since a time (with the last read's error), or a
// table that gives this node nothing yet. It is empty while the node owns
// slots.
func (g *Group) Reason() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owned.Len() > 0 {
		return ""
	}
	failing := ""
	if g.readErr != nil {
		failing = ": " + g.readErr.Error()
	}
	switch {
	case !g.gaveUp.IsZero() && g.cur.owners == nil:
		return fmt.Sprintf("every slot given up at %s: no table could be read for OwnershipTTL (%s) since %s%s",
			g.gaveUp.Format(time.TimeOnly), g.opts.OwnershipTTL, g.readAt.Format(time.TimeOnly), failing)
	case g.readAt.IsZero():
		return "no slot table read yet" + failing
	case g.cur.epoch == 0:
		return "no leader has published a table yet"
	case g.draining > 0:
		return "handing its slots over to their new owners"
	default:
		return fmt.Sprintf("the table (epoch %d) gives this node no slot yet: a leader assigns slots to the members it sees", g.cur.epoch)
	}
}

// acknowledge records in the table that this node has applied epoch (or
// left), by compare-and-swap, read again on conflict.
func (g *Group) acknowledge(ctx context.Context, epoch uint64) error {
	for {
		data, version, err := g.c.GetRecord(ctx, g.opts.Name)
		if err != nil || version == "" {
			return err
		}
		st, err := decode(data)
		if err != nil {
			return err
		}
		if ack, ok := st.acks[g.self]; ok && ack == epoch {
			return nil
		}
		st.acks[g.self] = epoch
		_, err = g.c.PutRecord(ctx, g.opts.Name, encode(st), version)
		if !errors.Is(err, cluster.ErrVersionConflict) {
			return err
		}
	}
}

// campaign runs for leader until the group closes, and leads when it wins.
func (g *Group) campaign() {
	retry := backoff.New(100*time.Millisecond, 2*time.Second)
	for g.ctx.Err() == nil {
		l, err := g.c.Campaign(g.ctx, g.opts.Name)
		if err != nil {
			if g.ctx.Err() == nil {
				g.opts.Logger.Warn("shard: campaigning to lead the group", "group", g.opts.Name, "err", err)
				select {
				case <-g.ctx.Done():
				case <-time.After(retry.Next()):
				}
			}
			continue
		}
		retry = backoff.New(100*time.Millisecond, 2*time.Second)
		g.mu.Lock()
		g.leading = l.Term()
		g.mu.Unlock()
		err = g.lead(l)
		g.mu.Lock()
		g.leading = 0
		g.mu.Unlock()
		if err != nil && g.ctx.Err() == nil {
			g.opts.Logger.Warn("shard: leading the group", "group", g.opts.Name, "term", l.Term(), "err", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.opts.OwnershipTTL)
		_ = l.Resign(ctx) // a lost leadership's Resign is a no-op
		cancel()
	}
}

// errDeposed: a leader of a later term has written the table.
var errDeposed = errors.New("a later leader has written the table")

// revocation names one revocation the leader waits on.
type revocation struct {
	from string
	at   uint64
}

// lead keeps the table balanced while l holds: at once from the first
// view, then RebalanceDelay after the view last changed, and whenever the
// table changes (acknowledgements) or a quarter of OwnershipTTL passes
// (revocations released by time).
func (g *Group) lead(l *cluster.Leadership) error {
	ctx, cancel := context.WithCancel(l.Context())
	defer cancel()
	defer context.AfterFunc(g.ctx, cancel)()
	views := g.c.Watch(ctx)
	versions := g.c.WatchRecord(ctx, g.opts.Name)
	tick := time.NewTicker(g.opts.OwnershipTTL / 4)
	defer tick.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	var alive, current []string
	haveView := false
	seen := map[revocation]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case nodes, open := <-views:
			if !open {
				return nil
			}
			current = current[:0:0]
			for _, n := range nodes {
				current = append(current, n.ID)
			}
			if !haveView {
				alive, haveView = current, true
			} else {
				debounce.Reset(g.opts.RebalanceDelay)
			}
		case <-debounce.C:
			alive = current
		case _, open := <-versions:
			if !open {
				return nil
			}
		case <-tick.C:
		}
		if !haveView {
			continue
		}
		err := g.step(ctx, l.Term(), alive, current, seen)
		switch {
		case errors.Is(err, errDeposed):
			return err
		case err != nil && ctx.Err() == nil:
			g.opts.Logger.Warn("shard: updating the slot table", "group", g.opts.Name, "err", err)
		}
	}
}

// step reads the table and writes the next one, if any, as leader of term.
func (g *Group) step(ctx context.Context, term uint64, alive, current []string, seen map[revocation]time.Time) error {
	rctx, cancel := context.WithTimeout(ctx, g.opts.OwnershipTTL/2)
	defer cancel()
	data, version, err := g.c.GetRecord(rctx, g.opts.Name)
	if err != nil {
		return err
	}
	cur := newState(g.opts.Slots)
	if version != "" {
		if cur, err = decode(data); err != nil {
			return fmt.Errorf("record %q: %w; herd leaves it alone: delete it to start a new table", g.opts.Name, err)
		}
	}
	if cur.term > term {
		return fmt.Errorf("%w (term %d, ours %d)", errDeposed, cur.term, term)
	}
	if len(cur.owners) != g.opts.Slots {
		return fmt.Errorf("record %q holds a table of %d slots and this group has WithSlots(%d): every member must use the same count", g.opts.Name, len(cur.owners), g.opts.Slots)
	}
	now := time.Now()
	pending := map[revocation]bool{}
	for s, from := range cur.from {
		if from != "" {
			pending[revocation{from, cur.revokedAt[s]}] = true
		}
	}
	for r := range seen {
		if !pending[r] {
			delete(seen, r)
		}
	}
	released := func(from string, at uint64) bool {
		if cur.acks[from] >= at {
			return true
		}
		if slices.Contains(current, from) {
			return false
		}
		r := revocation{from, at}
		first, ok := seen[r]
		if !ok {
			seen[r] = now
			return false
		}
		return now.Sub(first) >= g.opts.OwnershipTTL+releaseMargin(g.opts.OwnershipTTL)
	}
	// Slots go to the members of the view that have joined the group: a
	// member's first acknowledgement announces it, and Close's says it left.
	var joined []string
	for _, id := range alive {
		if ack, ok := cur.acks[id]; ok && ack != left {
			joined = append(joined, id)
		}
	}
	next, changed := plan(cur, joined, released)
	for id := range next.acks {
		// Forget the acknowledgements of nodes gone for good: not in either
		// view, nothing left to release.
		if !slices.Contains(current, id) && !slices.Contains(alive, id) && !slices.Contains(next.from, id) {
			if !changed {
				next = next.clone()
				changed = true
			}
			delete(next.acks, id)
		}
	}
	if cur.term < term {
		if !changed {
			next = next.clone()
		}
		next.term, changed = term, true
	}
	if !changed {
		return nil
	}
	if _, err := g.c.PutRecord(rctx, g.opts.Name, encode(next), version); err != nil {
		if errors.Is(err, cluster.ErrVersionConflict) {
			return nil // someone wrote first; its write wakes the loop through WatchRecord
		}
		return err
	}
	return nil
}
