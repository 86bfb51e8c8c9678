// Package backend is what a herd backend is written with, as
// database/sql/driver is to database/sql: a program uses package cluster; a
// backend (in herd or in a module of its own) imports this package for what
// every coordinator shares, and supplies only what differs.
//
// What every coordinator shares:
//
//   - Lifecycle: RegisterRemote's checks and order, the registration
//     supervisor's start and stop, and Close's one correct order (campaigns
//     and leaderships first, while the server can still release them; then
//     the supervisor; then the deregistration, bounded; then the backend's
//     shutdown, its goroutines and the view). A backend supplies Register,
//     Supervise and Deregister (a Registrar) and its own shutdown; a
//     Registrar that can also rewrite an entry (an Updater) lets Close mark
//     the node leaving before it goes, so that peers never hold a graceful
//     leave as a node that vanished. Withdraw gives a registration up
//     without deregistering (gossip, on finding its ID held elsewhere).
//   - View: the member list that Watch returns, sorted and with self
//     marked, published without ever blocking on a slow watcher; Malformed
//     counts entries written by others that do not decode, once per write.
//   - Book, Entry, Watchdog, KeepRenewing, Observe, WatchRecord: the
//     campaigns of a coordinator's elections (one per name, all ended by
//     Close) and the watchdog that ends a leadership before its session can
//     lapse. Package leaserecord is leader election over one
//     compare-and-swap record, for servers without a lock.
//   - AllRefused: start-up that says "connection refused" at once.
//
// A backend registers itself with Register in an init function, so that
// importing it makes it selectable by SW_CLUSTER; Register also takes the
// backend's section of the configuration (an embedded config.yaml: each key
// with its ${SW_CLUSTER_…:default} placeholder), checked against the
// backend's Go defaults when it registers. Its coordinator implements
// cluster.Coordinator: membership, election (a Leadership comes from
// Entry.Lead or NewLeadership), records and Stats; it stores its node's
// entry in the shared wire format (EncodeNode, DecodeNode) and refuses a
// live duplicate with CheckTakeover; it reads the shared options with
// NewOptions and keeps the logger for Logger(). The conformance suite in
// package clustertest checks it against its real server, and
// ExampleLifecycle is a whole backend in about 150 lines.
package backend

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/herd-go/herd/cluster"
)

// Registrar is what a backend does to keep one node registered; Lifecycle
// calls it in order and never concurrently with itself for one node.
type Registrar interface {
	// Register makes self a member and returns once the server holds the
	// entry, so that an error means self is not registered. It refuses an
	// ID a live process at another address holds, with an error wrapping
	// cluster.ErrDuplicateID (CheckTakeover decides).
	Register(ctx context.Context, self cluster.Node) error
	// Supervise keeps self registered until ctx ends, repairing what the
	// server loses (an expired lease, a deleted entry, a forgotten service)
	// and never giving up; it returns once ctx has ended.
	Supervise(ctx context.Context, self cluster.Node)
	// Deregister removes self's entry so peers drop it at once, within ctx.
	// It is called once, after Supervise has returned.
	Deregister(ctx context.Context, self cluster.Node) error
}

// Updater is what a Registrar implements when the backend can rewrite a
// registered node's entry in place. Close then tells peers the node is
// leaving (cluster.StateLeaving in its metadata) before it deregisters, so
// that their Managers let it go at once instead of holding it as a node
// that vanished; without it a mass graceful leave can be held by
// protection mode for its confirm period.
type Updater interface {
	// Update rewrites self's entry, within ctx; it is called after
	// Supervise has returned and before Deregister.
	Update(ctx context.Context, self cluster.Node) error
}

// LeaveNotice bounds how long Close spends telling peers the node is
// leaving: writing the mark and seeing it come back through the backend's
// own watch. Once it has come back, Close waits LeaveSettle more, so that
// peers' watches, which the server serves in the same order, have it too
// before the entry goes.
const (
	LeaveNotice = time.Second
	LeaveSettle = 100 * time.Millisecond
)

// Lifecycle is the part of a coordinator every backend shares. Set it up
// with Init in the backend's New, then forward RegisterRemote, Close,
// RegisteredID, Leading and Campaigning to it; the zero value is not usable.
type Lifecycle struct {
	// Elections are the coordinator's campaigns and leaderships: a
	// backend's Campaign begins an Entry here, and Close ends them all.
	Elections Book
	// View is the member list the backend publishes and Watch returns.
	View View

	name    string
	reg     Registrar
	timeout time.Duration
	ctx     context.Context // ends when Close begins the shutdown
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// regMu serialises RegisterRemote with Close, so that Close waits for a
	// registration in flight and then deregisters it; mu guards the fields,
	// and is never held across a call to the server.
	regMu     sync.Mutex
	mu        sync.Mutex
	self      *cluster.Node
	closed    bool
	withdrawn bool // Withdraw was called since RegisterRemote began
	superStop context.CancelFunc
	superDone chan struct{}
}

// Init prepares l for a backend called name (the prefix of its errors) that
// registers through reg (a platform that registers its nodes itself, such
// as Kubernetes, checks in Register and has nothing to supervise or remove),
// and bounds each step of Close that talks to the server (resigning,
// deregistering) by timeout.
func (l *Lifecycle) Init(name string, reg Registrar, timeout time.Duration) {
	l.name, l.reg, l.timeout = name, reg, timeout
	l.ctx, l.cancel = context.WithCancel(context.Background())
}

// Context ends when Close begins the backend's shutdown: the lifetime of the
// coordinator's background work.
func (l *Lifecycle) Context() context.Context { return l.ctx }

// Go runs f in the background; Close waits for it after cancelling
// Context, which f must watch.
func (l *Lifecycle) Go(f func()) { l.wg.Go(f) }

// Wait waits for the work started with Go. Close calls it after shutdown; a
// backend whose client must outlive that work calls it first in shutdown.
func (l *Lifecycle) Wait() { l.wg.Wait() }

// RegisterRemote registers self through the Registrar and starts its
// supervisor. It refuses an invalid node, a closed coordinator and a second
// node: one coordinator registers one node.
func (l *Lifecycle) RegisterRemote(ctx context.Context, self cluster.Node) error {
	if err := self.Validate(); err != nil {
		return err
	}
	self.Self = false
	l.regMu.Lock()
	defer l.regMu.Unlock()
	l.mu.Lock()
	closed, registered := l.closed, l.self
	l.mu.Unlock()
	if closed {
		return cluster.ErrClosed
	}
	if registered != nil {
		return fmt.Errorf("%s: node %s is already registered by this coordinator; use one coordinator per node", l.name, registered.ID)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	l.withdrawn = false
	l.mu.Unlock()
	if err := l.reg.Register(ctx, self); err != nil {
		return err
	}
	sctx, stop := context.WithCancel(l.ctx)
	done := make(chan struct{})
	l.mu.Lock()
	if l.withdrawn {
		// Given up while it registered: the backend reports why (gossip's
		// Err); there is nothing to supervise or to remove.
		l.mu.Unlock()
		stop()
		return nil
	}
	l.self, l.superStop, l.superDone = &self, stop, done
	l.mu.Unlock()
	l.wg.Go(func() {
		defer close(done)
		l.reg.Supervise(sctx, self)
	})
	l.View.Remark(self.ID)
	return nil
}

// Withdraw gives the registration up without deregistering, for a backend
// that learns after registering that the ID is not its to hold (gossip,
// when a live member at another address holds it and wins the tie). The
// supervisor is told to stop, Close will neither mark nor deregister the
// node, and RegisterRemote may be called again. Called while RegisterRemote
// is registering, it makes that registration not count. It never waits, so
// the backend may call it from its own goroutines and under its own locks;
// the backend withdraws its entry itself.
func (l *Lifecycle) Withdraw() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.withdrawn = true
	if l.superStop != nil {
		l.superStop()
	}
	l.self, l.superStop, l.superDone = nil, nil, nil
}

// RegisteredID is the ID of the node RegisterRemote registered, or "".
func (l *Lifecycle) RegisteredID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.self == nil {
		return ""
	}
	return l.self.ID
}

// Closed reports whether Close has begun.
func (l *Lifecycle) Closed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Leading reports this coordinator's term in election while its leadership
// holds (Done not closed), by its own knowledge.
func (l *Lifecycle) Leading(election string) (term uint64, ok bool) {
	return l.Elections.Leading(election)
}

// Campaigning reports whether this coordinator campaigns for or leads
// election, so that package shard can refuse a group named like it.
func (l *Lifecycle) Campaigning(election string) bool {
	return l.Elections.Active(election)
}

// markedLeaving returns n with the mark of a graceful leave
// (cluster.StateLeaving under cluster.MetaState), on a copy of its metadata.
func markedLeaving(n cluster.Node) cluster.Node {
	meta := maps.Clone(n.Meta)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[cluster.MetaState] = cluster.StateLeaving
	n.Meta = meta
	return n
}

// markLeaving writes self with the leaving mark and waits, within
// LeaveNotice, until the View shows it, then LeaveSettle more. It is best
// effort: a server out of reach gets the plain deregistration that follows.
func (l *Lifecycle) markLeaving(up Updater, self cluster.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), min(l.timeout, LeaveNotice))
	defer cancel()
	if up.Update(ctx, markedLeaving(self)) != nil {
		return
	}
	for nodes := range l.View.Subscribe(ctx) {
		if slices.ContainsFunc(nodes, func(n cluster.Node) bool { return n.ID == self.ID && n.Leaving() }) {
			time.Sleep(LeaveSettle)
			return
		}
	}
}

// Close ends the coordinator in its one order: it resigns every leadership
// and ends every campaign (bounded by the timeout, while the server can
// still release them), stops the supervisor, tells peers the node is
// leaving (when the Registrar is an Updater), deregisters self (bounded by
// the timeout), cancels Context, calls shutdown (the backend closes its
// client there), waits for the work started with Go, and closes the View.
// Later calls return nil at once.
func (l *Lifecycle) Close(shutdown func() error) error {
	l.regMu.Lock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.regMu.Unlock()
		return nil
	}
	l.closed = true
	self, stop, done := l.self, l.superStop, l.superDone
	l.mu.Unlock()
	l.regMu.Unlock()

	err := l.Elections.Close(l.timeout)
	if self != nil {
		stop()
		<-done
		if up, ok := l.reg.(Updater); ok {
			l.markLeaving(up, *self)
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		if derr := l.reg.Deregister(ctx, *self); derr != nil {
			err = errors.Join(err, derr)
		}
		cancel()
	}
	l.cancel()
	if shutdown != nil {
		if serr := shutdown(); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	l.wg.Wait()
	l.View.Close()
	return err
}
