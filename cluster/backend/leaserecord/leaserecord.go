// Package leaserecord is leader election over one record that candidates
// replace with compare-and-swap, the protocol of client-go's leaderelection
// over a Lease object: the holder renews the record; a candidate takes it
// once it has seen the record unchanged for a whole TTL on its own clock, or
// free; every acquisition raises the term. Backends without a native lock
// (Kubernetes, Nacos) give it a Store.
//
// Safety does not depend on synchronised clocks. A candidate's TTL starts
// when it first sees a version of the record, which is after the holder
// wrote it, and the holder's attempt to write it started earlier still. The
// holder's Done closes RenewDeadline after the start of its last successful
// renewal, so it closes at least TTL - RenewDeadline before any candidate
// could take the record (clock rates aside).
package leaserecord

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// Record is the stored lease.
type Record struct {
	Holder string `json:"holder"` // the leader's node ID; empty when released
	Term   uint64 `json:"term"`   // raised by every acquisition
	// Renewals counts the holder's renewals, so that every write changes
	// the record (Nacos compares contents by their MD5).
	Renewals  uint64 `json:"renewals"`
	TTLMillis int64  `json:"ttlMillis"`
}

// ErrConflict is returned by Store.Put when the record is not at the
// version given.
var ErrConflict = errors.New("the lease record changed")

// RefusedError is a store's refusal that waiting will not change (a
// permission): Campaign returns it at once.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// Store keeps one record.
type Store interface {
	// Get returns the record and its version; version "" means absent.
	Get(ctx context.Context) (Record, string, error)
	// Put writes r if the record is at version ("" = absent) and returns
	// the new version, or ErrConflict.
	Put(ctx context.Context, r Record, version string) (string, error)
}

// Timing is the protocol's clock.
type Timing struct {
	// TTL is how long a candidate waits, from when it first sees a version
	// of the record, before it may take it.
	TTL time.Duration
	// RenewDeadline is how long after the start of its last successful
	// renewal the holder gives up (closes Done); below TTL.
	RenewDeadline time.Duration
	// RetryPeriod is how often the holder renews and candidates and
	// observers read the record.
	RetryPeriod time.Duration
}

// DefaultRenewDeadline is two thirds of ttl, client-go's ratio.
func DefaultRenewDeadline(ttl time.Duration) time.Duration { return ttl * 2 / 3 }

// Held is a won lease.
type Held struct {
	Term    uint64
	version string
	rec     Record
	renewed time.Time // when the winning write was sent
}

// Campaign waits until id holds the record. It fails with an error wrapping
// ErrSessionLost when the store cannot be read or written for RenewDeadline.
func Campaign(ctx context.Context, s Store, id string, t Timing) (Held, error) {
	var seenVersion string
	var seenAt, failingSince time.Time
	for {
		rec, version, err := s.Get(ctx)
		now := time.Now()
		if err == nil && (version != seenVersion || seenAt.IsZero()) {
			seenVersion, seenAt = version, now
		}
		if err == nil {
			ttl := time.Duration(rec.TTLMillis) * time.Millisecond
			if rec.Holder == "" || rec.Holder == id || version == "" || now.Sub(seenAt) >= ttl {
				next := Record{Holder: id, Term: rec.Term + 1, TTLMillis: t.TTL.Milliseconds()}
				v, perr := s.Put(ctx, next, version)
				if perr == nil {
					return Held{Term: next.Term, version: v, rec: next, renewed: now}, nil
				}
				if errors.Is(perr, ErrConflict) {
					failingSince = time.Time{}
					continue
				}
				err = perr
			} else {
				failingSince = time.Time{}
				if err := waitChange(ctx, s, version, min(t.RetryPeriod, seenAt.Add(ttl).Sub(now))); err != nil {
					return Held{}, err
				}
				continue
			}
		}
		if ctx.Err() != nil {
			return Held{}, ctx.Err()
		}
		if refused := (*RefusedError)(nil); errors.As(err, &refused) {
			return Held{}, err
		}
		if failingSince.IsZero() {
			failingSince = now
		} else if now.Sub(failingSince) >= t.RenewDeadline {
			return Held{}, fmt.Errorf("the lease record was out of reach for %s: %w: %w", t.RenewDeadline, cluster.ErrSessionLost, err)
		}
		if err := backend.Sleep(ctx, t.RetryPeriod, nil); err != nil {
			return Held{}, err
		}
	}
}

// Notifier is a Store that can say when the record changes, so that a
// candidate wakes at once when the leader resigns instead of at its next
// read.
type Notifier interface {
	// Changed returns a channel closed when the record is no longer at
	// version, or (at the latest) when ctx ends.
	Changed(ctx context.Context, version string) <-chan struct{}
}

// waitChange sleeps for d, or until the record changes from version.
func waitChange(ctx context.Context, s Store, version string, d time.Duration) error {
	n, ok := s.(Notifier)
	if !ok || version == "" {
		return backend.Sleep(ctx, d, nil)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return backend.Sleep(ctx, d, n.Changed(wctx, version))
}

// Keep renews h every RetryPeriod until ctx ends or the lease is seen
// taken, and calls lose RenewDeadline after the start of the last successful
// renewal or as soon as the record is seen taken. It returns the state to
// release from.
func Keep(ctx context.Context, s Store, id string, t Timing, h Held, lose func(error)) Held {
	dog := backend.NewWatchdog(h.renewed.Add(t.RenewDeadline), func() {
		lose(fmt.Errorf("the lease was not renewed within %s: %w", t.RenewDeadline, cluster.ErrSessionLost))
	})
	defer dog.Stop()
	tick := time.NewTicker(t.RetryPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return h
		case <-tick.C:
		}
		next := h.rec
		next.Renewals++
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, t.RetryPeriod)
		v, err := s.Put(rctx, next, h.version)
		cancel()
		if errors.Is(err, ErrConflict) {
			// Our own earlier write may have landed with its answer lost.
			cur, cv, gerr := s.Get(ctx)
			if gerr == nil && cur.Holder == id && cur.Term == h.Term {
				h.rec, h.version = cur, cv
				continue
			}
			// Taken, or changed and unreadable: no longer provably ours.
			// (After Resign this changes nothing: the first cause stays.)
			lose(fmt.Errorf("the lease record changed (now holder %q, term %d; read error %v): %w", cur.Holder, cur.Term, gerr, cluster.ErrSessionLost))
			h.version = ""
			return h
		}
		if err == nil {
			h.rec, h.version = next, v
			dog.Extend(sent.Add(t.RenewDeadline))
		}
	}
}

// Release frees the record, if it is still ours, so a candidate can take it
// at once.
func Release(ctx context.Context, s Store, h Held) error {
	if h.version == "" {
		return nil
	}
	free := h.rec
	free.Holder = "" // a change of content, as Nacos's compare-and-swap needs
	if _, err := s.Put(ctx, free, h.version); err != nil && !errors.Is(err, ErrConflict) {
		return err
	}
	return nil
}

// Elect is a lease-record backend's whole campaign: it campaigns in entry's
// context (campaignCtx), then leads. Failing, it forgets entry and returns
// the campaign's error, prefixed by what (e.g. `kubernetes: campaign for "x"`)
// unless the context ended it.
func Elect(campaignCtx context.Context, entry *backend.Entry, what string, s Store, id string, t Timing, run func(func())) (*cluster.Leadership, error) {
	held, err := Campaign(campaignCtx, s, id, t)
	if err != nil {
		err = fmt.Errorf("%s: %w", what, err)
		if campaignCtx.Err() != nil {
			err = backend.CampaignErr(campaignCtx, what)
		}
		entry.Forget()
		return nil, err
	}
	l, err := Lead(entry, s, id, t, held, run)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return l, nil
}

// Lead runs a won lease as a leadership: it renews it in the background
// (run starts a goroutine the caller tracks) and releases it on Resign.
func Lead(entry *backend.Entry, s Store, id string, t Timing, h Held, run func(func())) (*cluster.Leadership, error) {
	keepCtx, stop := context.WithCancel(context.Background())
	kept := make(chan Held, 1)
	// renewing is set once the renewal goroutine is certain to run and
	// hand its last Held to kept. entry.Lead resigns at once, before it,
	// when the campaign ended between the win and here; then there is
	// nothing to wait for, and the error branch below releases h.
	var renewing atomic.Bool
	l, lose, err := entry.Lead(h.Term, func(ctx context.Context) error {
		stop()
		if !renewing.Load() {
			return nil
		}
		final := <-kept
		return Release(ctx, s, final)
	})
	if err != nil {
		stop()
		_ = Release(context.Background(), s, h)
		return nil, err
	}
	context.AfterFunc(l.Context(), stop)
	renewing.Store(true)
	run(func() {
		final := Keep(keepCtx, s, id, t, h, lose)
		if cause := l.Err(); !errors.Is(cause, cluster.ErrResigned) && !errors.Is(cause, cluster.ErrClosed) {
			// Lost: if the record is still ours after all, free it now
			// rather than make the next leader wait out the TTL.
			rctx, cancel := context.WithTimeout(context.Background(), t.RetryPeriod)
			_ = Release(rctx, s, final)
			cancel()
			final.version = ""
		}
		kept <- final
	})
	return l, nil
}

// Observe reads the record every RetryPeriod and publishes its holder; a
// holder whose record has not changed for its TTL is shown as no leader.
func Observe(ctx context.Context, s Store, t Timing, publish func(cluster.Leader)) {
	var seenVersion string
	var seenAt time.Time
	for ctx.Err() == nil {
		rec, version, err := s.Get(ctx)
		if err == nil {
			now := time.Now()
			if version != seenVersion || seenAt.IsZero() {
				seenVersion, seenAt = version, now
			}
			leader := cluster.Leader{ID: rec.Holder, Term: rec.Term}
			if rec.Holder == "" || now.Sub(seenAt) >= time.Duration(rec.TTLMillis)*time.Millisecond {
				leader = cluster.Leader{}
			}
			publish(leader)
		}
		_ = backend.Sleep(ctx, t.RetryPeriod, nil)
	}
}

// CheckTiming checks a backend's electionTTL and electionRenewPeriod
// settings: the TTL whole seconds and at least 3s, the period at most a
// quarter of it, so that the holder tries at least twice before it gives
// up. It returns which key is wrong and what is accepted.
func CheckTiming(ttl, renew time.Duration) (badKey, accepted string) {
	if ttl < 3*time.Second || ttl%time.Second != 0 {
		return "electionTTL", "a whole number of seconds, at least 3s, e.g. 10s"
	}
	if renew <= 0 || renew > ttl/4 {
		return "electionRenewPeriod", fmt.Sprintf("a positive duration of at most a quarter of electionTTL (%s), e.g. 1s", ttl/4)
	}
	return "", ""
}
