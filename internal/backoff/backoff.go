// Package backoff computes jittered, capped exponential retry delays. It has
// no attempt limit on purpose: herd's supervisors retry until closed.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff with full jitter in [d/2, d].
type Policy struct {
	Initial time.Duration // first delay; default 100ms
	Max     time.Duration // cap; default 10s
}

// Backoff tracks the attempt count of one retry loop. Not safe for
// concurrent use; each loop owns one.
type Backoff struct {
	p       Policy
	attempt int
}

// New returns a Backoff for p, filling in defaults.
func New(p Policy) *Backoff {
	if p.Initial <= 0 {
		p.Initial = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 10 * time.Second
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	return &Backoff{p: p}
}

// Next returns the delay before the next attempt and advances.
func (b *Backoff) Next() time.Duration {
	d := b.p.Initial
	for i := 0; i < b.attempt && d < b.p.Max; i++ {
		d *= 2
	}
	d = min(d, b.p.Max)
	b.attempt++
	half := d / 2
	return half + rand.N(half+1)
}

// Reset starts again from Initial, after a success.
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
