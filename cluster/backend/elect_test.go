package backend_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

func TestBeginRefuses(t *testing.T) {
	var b backend.Book
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for name, c := range map[string]struct {
		ctx       context.Context
		election  string
		candidate string
		want      error
	}{
		"unregistered": {context.Background(), "e", "", cluster.ErrNotRegistered},
		"bad name":     {context.Background(), "E/1", "a", nil},
		"ended ctx":    {ended, "e", "a", context.Canceled},
	} {
		_, _, err := b.Begin(c.ctx, c.election, c.candidate)
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
	e, _, err := b.Begin(context.Background(), "e", "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Begin(context.Background(), "e", "a"); err == nil {
		t.Error("a second campaign for the same election was accepted")
	}
	// Once its leadership has ended, the name is free, even before the
	// entry's clean-up callback has run.
	l, lose, err := e.Lead(7, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Term() != 7 || l.Election() != "e" {
		t.Errorf("leadership %q term %d", l.Election(), l.Term())
	}
	lose(cluster.ErrSessionLost)
	if _, _, err := b.Begin(context.Background(), "e", "a"); err != nil {
		t.Errorf("campaign after the leadership ended: %v", err)
	}
}

func TestCloseEndsCampaignsAndResignsLeaderships(t *testing.T) {
	var b backend.Book
	_, campaignCtx, err := b.Begin(context.Background(), "waiting", "a")
	if err != nil {
		t.Fatal(err)
	}
	leading, _, err := b.Begin(context.Background(), "leading", "a")
	if err != nil {
		t.Fatal(err)
	}
	var resigned atomic.Int32
	l, _, err := leading.Lead(1, func(context.Context) error { resigned.Add(1); return errors.New("server gone") })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(time.Second); err == nil {
		t.Error("Close hid the resignation's error")
	}
	if !errors.Is(context.Cause(campaignCtx), cluster.ErrClosed) {
		t.Errorf("campaign's cause %v, want ErrClosed", context.Cause(campaignCtx))
	}
	if !errors.Is(l.Err(), cluster.ErrClosed) || resigned.Load() != 1 {
		t.Errorf("leadership Err %v, resigned %d times", l.Err(), resigned.Load())
	}
	if _, _, err := b.Begin(context.Background(), "later", "a"); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("Begin after Close: %v", err)
	}
}

func TestLeadAfterCloseGivesTheWinBack(t *testing.T) {
	var b backend.Book
	e, _, err := b.Begin(context.Background(), "e", "a")
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Close(time.Second)
	var resigned atomic.Int32
	if _, _, err := e.Lead(1, func(context.Context) error { resigned.Add(1); return nil }); !errors.Is(err, cluster.ErrClosed) {
		t.Fatalf("Lead after Close: %v", err)
	}
	if resigned.Load() != 1 {
		t.Error("a win that arrived after Close was not released")
	}
}

func TestWatchdog(t *testing.T) {
	fired := make(chan time.Time, 1)
	start := time.Now()
	w := backend.NewWatchdog(start.Add(50*time.Millisecond), func() { fired <- time.Now() })
	if !w.Extend(start.Add(150 * time.Millisecond)) {
		t.Fatal("Extend before the deadline reported fired")
	}
	w.Extend(start.Add(10 * time.Millisecond)) // earlier: ignored
	at := <-fired
	if at.Sub(start) < 150*time.Millisecond {
		t.Errorf("fired after %s, want at least 150ms", at.Sub(start))
	}
	if w.Extend(time.Now().Add(time.Hour)) {
		t.Error("Extend after firing reported not fired")
	}
	stopped := backend.NewWatchdog(time.Now().Add(20*time.Millisecond), func() { fired <- time.Now() })
	stopped.Stop()
	select {
	case <-fired:
		t.Error("a stopped watchdog fired")
	case <-time.After(60 * time.Millisecond):
	}
}

func TestKeepRenewing(t *testing.T) {
	var calls atomic.Int32
	fired := make(chan struct{})
	dog := backend.NewWatchdog(time.Now().Add(100*time.Millisecond), func() { close(fired) })
	defer dog.Stop()
	lost := make(chan error, 1)
	backend.KeepRenewing(context.Background(), 20*time.Millisecond, dog, func(context.Context) (time.Duration, error) {
		switch n := calls.Add(1); {
		case n == 3:
			return 0, errors.New("a transient failure")
		case n < 10:
			return 100 * time.Millisecond, nil
		default:
			return 0, fmt.Errorf("gone: %w", cluster.ErrSessionLost)
		}
	}, func(err error) { lost <- err })
	if err := <-lost; !errors.Is(err, cluster.ErrSessionLost) {
		t.Fatalf("lose got %v", err)
	}
	select {
	case <-fired:
		t.Fatal("the watchdog fired although renewals kept extending it")
	default:
	}
}

func TestObserve(t *testing.T) {
	life, end := context.WithCancel(context.Background())
	defer end()
	if _, open := <-backend.Observe(context.Background(), life, "Bad Name", func(f func()) { go f() }, nil); open {
		t.Error("Observe of a bad name delivered")
	}
	got := backend.Observe(context.Background(), life, "e", func(f func()) { go f() }, func(ctx context.Context, publish func(cluster.Leader)) {
		publish(cluster.Leader{ID: "a", Term: 1})
		publish(cluster.Leader{ID: "a", Term: 1}) // unchanged: not passed on
		publish(cluster.Leader{ID: "b", Term: 2})
		<-ctx.Done()
	})
	var seen []cluster.Leader
	for l := range got {
		seen = append(seen, l)
		if l.ID == "b" {
			end() // the coordinator closes: the channel closes
		}
	}
	if len(seen) == 0 || seen[len(seen)-1] != (cluster.Leader{ID: "b", Term: 2}) {
		t.Errorf("observed %v", seen)
	}
	if _, open := <-backend.Observe(context.Background(), life, "e", nil, nil); open {
		t.Error("Observe after the coordinator closed delivered")
	}
}

// An ended entry's late clean-up must not free the name of the campaign
// that took it over.
func TestLateForgetKeepsTheNewCampaign(t *testing.T) {
	var b backend.Book
	old, _, err := b.Begin(context.Background(), "e", "a")
	if err != nil {
		t.Fatal(err)
	}
	_, lose, err := old.Lead(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	lose(cluster.ErrSessionLost)
	if _, _, err := b.Begin(context.Background(), "e", "a"); err != nil {
		t.Fatal(err)
	}
	old.Forget() // the ended leadership's callback, late
	if _, _, err := b.Begin(context.Background(), "e", "a"); err == nil {
		t.Error("a late Forget of the ended entry freed the name of the campaign running now")
	}
}
