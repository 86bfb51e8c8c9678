// What every backend's election shares: the book of campaigns a coordinator
// runs (one per election name, all ended by Close) and the watchdog that
// ends a leadership when its renewals stop in time.

package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/latest"
)

// Book records a coordinator's campaigns and leaderships by election name.
// The zero value is ready to use.
type Book struct {
	mu     sync.Mutex
	closed bool
	active map[string]*Entry
}

// Entry is one election's campaign, then its leadership.
type Entry struct {
	book   *Book
	name   string
	ctx    context.Context // ends when the campaign or leadership must stop
	cancel context.CancelCauseFunc

	mu   sync.Mutex
	lead *cluster.Leadership
	lose func(error)
}

// Begin checks a campaign of candidate (the registered node's ID, empty
// before RegisterRemote) for name, and reserves the name for it; the
// campaign's context derives from ctx and also ends at Close. It refuses a
// name this coordinator is already campaigning for or leading.
func (b *Book) Begin(ctx context.Context, name, candidate string) (*Entry, context.Context, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, cluster.ErrClosed
	}
	if candidate == "" {
		return nil, nil, cluster.ErrNotRegistered
	}
	if err := cluster.CheckElection(name); err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	// A leadership that has ended is forgotten by a callback that may not
	// have run yet: it does not hold the name.
	if old, ok := b.active[name]; ok && !old.ended() {
		return nil, nil, fmt.Errorf("cluster: this node is already campaigning for or leading election %q; resign first", name)
	}
	if b.active == nil {
		b.active = make(map[string]*Entry)
	}
	e := &Entry{book: b, name: name}
	e.ctx, e.cancel = context.WithCancelCause(ctx)
	b.active[name] = e
	return e, e.ctx, nil
}

// Lead turns the campaign into a leadership of term. resign releases it in
// the backend; the entry is forgotten once the leadership ends, whatever the
// cause. It returns nil and ErrClosed if Close came first.
func (e *Entry) Lead(term uint64, resign func(context.Context) error) (*cluster.Leadership, func(error), error) {
	l, lose := NewLeadership(e.name, term, resign)
	e.mu.Lock()
	e.lead, e.lose = l, lose
	e.mu.Unlock()
	// Close may have run between the win and here: it ended e.ctx.
	if e.ctx.Err() != nil {
		cause := context.Cause(e.ctx)
		lose(cause)
		_ = l.Resign(context.Background())
		e.Forget()
		return nil, nil, cause
	}
	context.AfterFunc(l.Context(), e.Forget)
	return l, lose, nil
}

func (e *Entry) ended() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lead != nil && e.lead.Err() != nil
}

// Cancel ends the campaign's context with cause.
func (e *Entry) Cancel(cause error) { e.cancel(cause) }

// Forget releases the name for a new campaign.
func (e *Entry) Forget() {
	e.cancel(context.Canceled)
	e.book.mu.Lock()
	if e.book.active[e.name] == e {
		delete(e.book.active, e.name)
	}
	e.book.mu.Unlock()
}

// Close ends every campaign with ErrClosed and resigns every leadership,
// the resignations bounded by within in all.
func (b *Book) Close(within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var errs []error
	for _, e := range b.end(cluster.ErrClosed, true) {
		e.mu.Lock()
		l := e.lead
		e.mu.Unlock()
		if l != nil {
			if err := l.Resign(ctx); err != nil {
				errs = append(errs, fmt.Errorf("resigning election %q: %w", e.name, err))
			}
		}
		e.Forget()
	}
	return errors.Join(errs...)
}

// end ends every campaign and leadership in the book with cause, closing
// the book first if closing, and returns their entries.
func (b *Book) end(cause error, closing bool) []*Entry {
	b.mu.Lock()
	b.closed = b.closed || closing
	entries := make([]*Entry, 0, len(b.active))
	for _, e := range b.active {
		entries = append(entries, e)
	}
	b.mu.Unlock()
	for _, e := range entries {
		e.cancel(cause)
		e.mu.Lock()
		lose := e.lose
		e.mu.Unlock()
		if lose != nil {
			lose(cause)
		}
	}
	return entries
}

// Leading returns the term of this coordinator's leadership of name while
// it holds (Done not closed), for the backends' Leading methods.
func (b *Book) Leading(name string) (term uint64, ok bool) {
	b.mu.Lock()
	e := b.active[name]
	b.mu.Unlock()
	if e == nil {
		return 0, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lead == nil || e.lead.Err() != nil {
		return 0, false
	}
	return e.lead.Term(), true
}

// Active reports whether this coordinator campaigns for or leads name.
func (b *Book) Active(name string) bool {
	b.mu.Lock()
	e := b.active[name]
	b.mu.Unlock()
	return e != nil && !e.ended()
}

// EndAll ends every campaign and leadership with cause, as Close does but
// without resigning (the caller withdraws from the backend itself) and
// without closing the book: campaigns may begin again.
func (b *Book) EndAll(cause error) { b.end(cause, false) }

// CampaignErr is the error a campaign returns when its context ended: the
// caller's ctx error, or ErrClosed or the session loss that ended it,
// prefixed by what (e.g. `etcd: campaign for "x"`).
func CampaignErr(campaignCtx context.Context, what string) error {
	cause := context.Cause(campaignCtx)
	if errors.Is(cause, cluster.ErrSessionLost) || errors.Is(cause, cluster.ErrClosed) {
		return fmt.Errorf("%s: %w", what, cause)
	}
	return campaignCtx.Err()
}

// Sleep waits for d, or until wake is closed (nil never is); it returns
// ctx.Err() if ctx ends first or has ended.
func Sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Watchdog calls fire once, when the deadline passes without being moved
// later. Backends move it after each renewal, to the earliest moment the
// server could let the session go minus their margin.
type Watchdog struct {
	mu       sync.Mutex
	timer    *time.Timer
	deadline time.Time
	fired    bool
	stopped  bool
}

// NewWatchdog arms a watchdog for deadline.
func NewWatchdog(deadline time.Time, fire func()) *Watchdog {
	w := &Watchdog{deadline: deadline}
	w.timer = time.AfterFunc(time.Until(deadline), func() {
		w.mu.Lock()
		// A renewal may have moved the deadline while this call waited.
		if w.stopped || w.fired || time.Now().Before(w.deadline) {
			if !w.stopped && !w.fired {
				w.timer.Reset(time.Until(w.deadline))
			}
			w.mu.Unlock()
			return
		}
		w.fired = true
		w.mu.Unlock()
		fire()
	})
	return w
}

// Extend moves the deadline later; an earlier one is ignored. It reports
// false once the watchdog has fired.
func (w *Watchdog) Extend(deadline time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired {
		return false
	}
	if deadline.After(w.deadline) {
		w.deadline = deadline
	}
	return true
}

// Stop disarms the watchdog.
func (w *Watchdog) Stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.timer.Stop()
}

// KeepRenewing calls renew every period until ctx ends or renew returns an
// error wrapping cluster.ErrSessionLost, which it passes to lose. After each
// successful renewal, which returns how long the server keeps the session
// from the moment the renewal was sent, it moves dog's deadline to that
// moment plus that long. Other errors are retried at the next period; the
// watchdog fires if they last.
func KeepRenewing(ctx context.Context, period time.Duration, dog *Watchdog, renew func(context.Context) (time.Duration, error), lose func(error)) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, period)
		life, err := renew(rctx)
		cancel()
		switch {
		case errors.Is(err, cluster.ErrSessionLost):
			lose(err)
			return
		case err == nil:
			dog.Extend(sent.Add(life))
		}
	}
}

// Observe streams an election's leader: follow runs in a goroutine that run
// starts, calling publish with what it reads, until its context ends (ctx,
// or life: the coordinator's). Only changes are passed on. For a bad name,
// or once life has ended, the channel is closed at once.
func Observe(ctx, life context.Context, name string, run func(func()), follow func(ctx context.Context, publish func(cluster.Leader))) <-chan cluster.Leader {
	return Stream(ctx, life, cluster.CheckElection(name), run, follow)
}

// WatchRecord streams a record's version as Observe streams a leader.
func WatchRecord(ctx, life context.Context, name string, run func(func()), follow func(ctx context.Context, publish func(version string))) <-chan string {
	return Stream(ctx, life, cluster.CheckRecord(name), run, follow)
}

// Stream is Observe and WatchRecord: it passes on the changes of what
// follow publishes, unless bad is not nil or life has ended.
func Stream[T comparable](ctx, life context.Context, bad error, run func(func()), follow func(ctx context.Context, publish func(T))) <-chan T {
	var v latest.Value[T]
	out := v.Subscribe(ctx)
	if bad != nil || life.Err() != nil {
		v.Close()
		return out
	}
	octx, cancel := context.WithCancel(life)
	stop := context.AfterFunc(ctx, cancel)
	run(func() {
		defer stop()
		defer cancel()
		defer v.Close()
		follow(octx, func(x T) {
			if last, ok := v.Load(); !ok || last != x {
				v.Publish(x)
			}
		})
	})
	return out
}

// CheckRecord is the start of a backend's GetRecord and PutRecord: the
// name's check, then ErrClosed once life (the coordinator's) has ended.
func CheckRecord(life context.Context, name string) error {
	if err := cluster.CheckRecord(name); err != nil {
		return err
	}
	if life.Err() != nil {
		return cluster.ErrClosed
	}
	return nil
}
