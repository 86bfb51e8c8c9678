package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herd-go/herd/cluster/internal/spi"
)

// Elector is the election role, one of Coordinator's:
//
//	lead, err := coord.Campaign(ctx, "compactor")
//
// The candidate is the node the coordinator registered, so RegisterRemote
// comes first.
type Elector interface {
	// Campaign blocks until this node leads the named election, ctx ends
	// (ctx.Err() is returned) or the backend session the campaign runs on is
	// lost (an error wrapping ErrSessionLost; campaign again). A node that
	// already leads the election gets an error: one Leadership per election
	// and coordinator.
	Campaign(ctx context.Context, election string) (*Leadership, error)
	// Observe streams the election's current leader: the value known now
	// and every change after it, coalesced like Watch. The zero Leader means
	// nobody leads. The channel is closed when ctx ends or the coordinator
	// closes.
	Observe(ctx context.Context, election string) <-chan Leader
}

// Leader names who leads an election, as an observer sees it.
type Leader struct {
	// ID is the leader's node ID; empty when nobody leads.
	ID string
	// Term is the leader's fencing token (see Leadership.Term).
	Term uint64
}

var (
	// ErrSessionLost: the backend session behind a campaign or a leadership
	// (an etcd lease, a Consul session, a ZooKeeper session, a lease record)
	// ended or could not be renewed within its safe window.
	ErrSessionLost = errors.New("cluster: the election session was lost")
	// ErrResigned: Resign ended the leadership.
	ErrResigned = errors.New("cluster: leadership resigned")
	// ErrNotRegistered: Campaign was called before RegisterRemote.
	ErrNotRegistered = errors.New("cluster: campaign before RegisterRemote: the candidate is the registered node")
)

// Leadership is held by the leader of one election until Done is closed.
//
// Done is closed as soon as leadership may be lost, and always before any
// other candidate can win: each backend closes it a stated margin ahead of
// the moment its server could let another node take over (see docs/election.md's
// election table). Work done on behalf of the leadership should stop when
// Done is closed, and writes to shared data should carry Term so that the
// store can refuse those of a deposed leader.
type Leadership struct {
	election string
	term     uint64
	ctx      context.Context
	lose     context.CancelCauseFunc

	resignOnce sync.Once
	resign     func(context.Context) error
	resignErr  error
}

// newLeadership returns a leadership of election with term, and the
// function that ends it with a cause (the first cause wins). resign releases
// the leadership in the backend; Resign calls it once, after Done is closed.
// Backends reach it as backend.NewLeadership.
func newLeadership(election string, term uint64, resign func(context.Context) error) (*Leadership, func(cause error)) {
	ctx, cancel := context.WithCancelCause(context.Background())
	l := &Leadership{election: election, term: term, ctx: ctx, lose: cancel, resign: resign}
	return l, func(cause error) { cancel(cause) }
}

func init() {
	spi.NewLeadership = func(election string, term uint64, resign func(context.Context) error) (any, func(cause error)) {
		return newLeadership(election, term, resign)
	}
}

// Election is the election's name.
func (l *Leadership) Election() string { return l.election }

// Term is the fencing token: strictly greater for every new leader of the
// election (including this node winning it again), so a store that keeps
// the highest term it has seen can refuse a deposed leader's writes.
func (l *Leadership) Term() uint64 { return l.term }

// Done is closed when the leadership ends or may have ended.
func (l *Leadership) Done() <-chan struct{} { return l.ctx.Done() }

// Err is nil while the leadership holds; after Done it says why it ended:
// ErrResigned, ErrClosed, or an error wrapping ErrSessionLost.
func (l *Leadership) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

// Context returns a context that ends with the leadership, for work that
// only the leader may do; its context.Cause is Err.
func (l *Leadership) Context() context.Context { return l.ctx }

// ResignWait bounds how long Resign waits for the backend when its context
// has no deadline. A resignation only lets the next leader win sooner: an
// unconfirmed one costs the election a session TTL, never safety, so a
// program that resigns on its way out (defer lead.Resign(ctx)) is not held
// by a backend that has gone away.
const ResignWait = 500 * time.Millisecond

// resignInBackground bounds how long a release that Resign stopped waiting
// for may go on trying in the background.
const resignInBackground = 10 * time.Second

// Resign ends the leadership: Done is closed first, then the backend is told,
// so that the next leader can win at once instead of waiting out a TTL.
//
// Resign always returns promptly. A leadership that was already lost (Done
// was closed with a cause other than ErrClosed) is released by its backend
// on its own, and Resign returns nil at once; Err keeps the cause.
// Otherwise Resign waits for the backend until ctx ends, or for ResignWait
// when ctx has no deadline. If the backend has not confirmed by then, Resign
// returns an error wrapping context.DeadlineExceeded (or ctx's error); the
// leadership has ended here all the same, the release goes on in the
// background for a few seconds more, and failing that the backend frees the
// election when the session expires. Calling it again returns the first
// call's result.
func (l *Leadership) Resign(ctx context.Context) error {
	// A coordinator's Close ends its leaderships with ErrClosed and then
	// resigns them, a release that must reach the backend like any other.
	lost := l.ctx.Err() != nil && !errors.Is(context.Cause(l.ctx), ErrClosed)
	l.lose(ErrResigned)
	l.resignOnce.Do(func() {
		if l.resign == nil {
			return
		}
		if lost {
			// The backend's own loss path releases what it held; a release
			// here could only wait on a server that is, often, not there.
			stale, cancel := context.WithCancel(context.WithoutCancel(ctx))
			cancel()
			go func() { _ = l.resign(stale) }()
			return
		}
		l.resignErr = l.release(ctx)
	})
	return l.resignErr
}

// release runs the backend's resign, waiting at most until ctx ends or, if
// ctx has no deadline, ResignWait.
func (l *Leadership) release(ctx context.Context) error {
	wait, stop := ctx, func() {}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeout(ctx, ResignWait)
		defer cancel()
		// The release itself may outlive the wait: a backend that answers a
		// little later still lets the next leader win before the TTL.
		ctx, stop = context.WithTimeout(ctx, resignInBackground)
	}
	done := make(chan error, 1)
	go func() {
		defer stop()
		done <- l.resign(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-wait.Done():
		return fmt.Errorf("cluster: resigning election %q: the backend did not confirm in time (%w); the leadership has ended here, and the backend frees the election when this node's session expires", l.election, wait.Err())
	}
}

// CheckElection checks an election name. Names are used as etcd and Consul
// keys, ZooKeeper znodes, Kubernetes object names and Nacos data IDs, so
// they are limited to what all of them accept: 1 to 63 lowercase letters,
// digits, '-' and '.', starting and ending with a letter or digit.
func CheckElection(name string) error { return checkName("election", name) }

// checkName applies CheckElection's rule to a name of kind what.
func checkName(what, name string) error {
	if name != "" && len(name) <= 63 && alnum(name[0]) && alnum(name[len(name)-1]) {
		ok := true
		for i := 0; i < len(name); i++ {
			if c := name[i]; !alnum(c) && c != '-' && c != '.' {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("cluster: %s name %q: want 1 to 63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", what, name)
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
