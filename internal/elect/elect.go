// Package elect holds what every backend's election shares: the book of
// campaigns a coordinator runs (one per election name, all ended by Close)
// and the watchdog that ends a leadership when its renewals stop in time.
package elect

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herd-go/herd/cluster"
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

// Begin checks name and reserves it for a campaign whose context derives from
// ctx and also ends at Close. It refuses a name this coordinator is already
// campaigning for or leading.
func (b *Book) Begin(ctx context.Context, name string) (*Entry, context.Context, error) {
	if err := cluster.CheckElection(name); err != nil {
		return nil, nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, cluster.ErrClosed
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
	l, lose := cluster.NewLeadership(e.name, term, resign)
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
// each resignation bounded by ctx.
func (b *Book) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	entries := make([]*Entry, 0, len(b.active))
	for _, e := range b.active {
		entries = append(entries, e)
	}
	b.mu.Unlock()
	var errs []error
	for _, e := range entries {
		e.cancel(cluster.ErrClosed)
		e.mu.Lock()
		l, lose := e.lead, e.lose
		e.mu.Unlock()
		if l != nil {
			lose(cluster.ErrClosed)
			if err := l.Resign(ctx); err != nil {
				errs = append(errs, fmt.Errorf("resigning election %q: %w", e.name, err))
			}
		}
		e.Forget()
	}
	return errors.Join(errs...)
}

// CampaignErr is the error a campaign returns when its context ended: the
// caller's ctx error, ErrClosed, or the session loss that ended it.
func CampaignErr(campaignCtx context.Context, backend string, name string) error {
	cause := context.Cause(campaignCtx)
	if errors.Is(cause, cluster.ErrSessionLost) || errors.Is(cause, cluster.ErrClosed) {
		return fmt.Errorf("%s: campaign for %q: %w", backend, name, cause)
	}
	return campaignCtx.Err()
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
