// Package latest broadcasts the most recent value of something to any number
// of subscribers, coalescing: a slow subscriber skips intermediate values and
// always receives the newest one, and a publisher never blocks.
package latest

import (
	"context"
	"sync"
)

// Value holds the latest published value and its subscribers.
// The zero value is ready to use.
type Value[T any] struct {
	mu     sync.Mutex
	val    T
	set    bool
	closed bool
	subs   map[chan T]struct{}
}

// Publish makes v the latest value and offers it to every subscriber,
// replacing any value a subscriber has not read yet.
func (l *Value[T]) Publish(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.val, l.set = v, true
	for ch := range l.subs {
		offer(ch, v)
	}
}

// Load returns the latest value and whether one was published.
func (l *Value[T]) Load() (T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.val, l.set
}

// Subscribe returns a channel that receives the current value (if any) at
// once and every later one, coalesced. The channel is closed when ctx ends or
// Close is called.
func (l *Value[T]) Subscribe(ctx context.Context) <-chan T {
	ch := make(chan T, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		close(ch)
		return ch
	}
	if l.subs == nil {
		l.subs = make(map[chan T]struct{})
	}
	l.subs[ch] = struct{}{}
	if l.set {
		ch <- l.val
	}
	l.mu.Unlock()

	if ctx.Done() != nil {
		context.AfterFunc(ctx, func() { l.unsubscribe(ch) })
	}
	return ch
}

func (l *Value[T]) unsubscribe(ch chan T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.subs[ch]; ok {
		delete(l.subs, ch)
		close(ch)
	}
}

// Close closes every subscriber's channel; later Publish calls are ignored
// and later subscribers get a closed channel.
func (l *Value[T]) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	for ch := range l.subs {
		close(ch)
	}
	l.subs = nil
}

// offer puts v in ch's single slot, replacing an unread older value.
// The caller holds the lock, so offer is the only sender.
func offer[T any](ch chan T, v T) {
	select {
	case <-ch:
	default:
	}
	ch <- v
}
