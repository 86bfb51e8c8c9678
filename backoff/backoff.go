// Package backoff computes jittered, capped exponential retry delays. It has
// no attempt limit on purpose: herd's supervisors retry until closed.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff tracks the attempt count of one retry loop: exponential from
// initial to max, with full jitter in [d/2, d]. Not safe for concurrent use;
// each loop owns one.
type Backoff struct {
	initial, max time.Duration
	attempt      int
}

// New returns a Backoff doubling from initial (default 100ms) to max
// (default 10s).
func New(initial, limit time.Duration) *Backoff {
	if initial <= 0 {
		initial = 100 * time.Millisecond
	}
	if limit <= 0 {
		limit = 10 * time.Second
	}
	return &Backoff{initial: initial, max: max(initial, limit)}
}

// Next returns the delay before the next attempt and advances.
func (b *Backoff) Next() time.Duration {
	d := b.initial
	for i := 0; i < b.attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.attempt++
	half := d / 2
	return half + rand.N(half+1)
}

// Reset starts again from the initial delay, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Wait sleeps for Next() or until ctx ends; it reports whether to go on.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
