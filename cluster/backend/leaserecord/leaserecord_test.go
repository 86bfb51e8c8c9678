package leaserecord_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/cluster/backend/leaserecord"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
)

// memStore is a record in memory whose version counts writes; down makes
// every call fail, as a server out of reach does.
type memStore struct {
	mu      sync.Mutex
	rec     leaserecord.Record
	version int
	down    bool
}

var errDown = errors.New("store out of reach")

func (m *memStore) Get(context.Context) (leaserecord.Record, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return leaserecord.Record{}, "", errDown
	}
	if m.version == 0 {
		return leaserecord.Record{}, "", nil
	}
	return m.rec, strconv.Itoa(m.version), nil
}

func (m *memStore) Put(_ context.Context, r leaserecord.Record, version string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return "", errDown
	}
	current := ""
	if m.version > 0 {
		current = strconv.Itoa(m.version)
	}
	if version != current {
		return "", leaserecord.ErrConflict
	}
	m.rec, m.version = r, m.version+1
	return strconv.Itoa(m.version), nil
}

func (m *memStore) setDown(down bool) {
	m.mu.Lock()
	m.down = down
	m.mu.Unlock()
}

var timing = leaserecord.Timing{TTL: 600 * time.Millisecond, RenewDeadline: 400 * time.Millisecond, RetryPeriod: 50 * time.Millisecond}

func lead(t *testing.T, book *backend.Book, s leaserecord.Store, id string) *cluster.Leadership {
	t.Helper()
	entry, ctx, err := book.Begin(context.Background(), "e", id)
	if err != nil {
		t.Fatal(err)
	}
	h, err := leaserecord.Campaign(ctx, s, id, timing)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	l, err := leaserecord.Lead(entry, s, id, timing, h, wg.Go)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = l.Resign(ctx)
		wg.Wait()
	})
	return l
}

// A holder that cannot renew gives up RenewDeadline after its last renewal,
// before a candidate, which counts a whole TTL from its first sight of that
// renewal, takes the record.
func TestLostRenewalsEndTheLeadershipBeforeATakeover(t *testing.T) {
	s := &memStore{}
	var book backend.Book
	l := lead(t, &book, s, "a")
	time.Sleep(3 * timing.RetryPeriod) // a few renewals
	s.setDown(true)
	cut := time.Now()
	select {
	case <-l.Done():
	case <-time.After(2 * timing.TTL):
		t.Fatal("the leadership outlived its renew deadline")
	}
	if !errors.Is(l.Err(), cluster.ErrSessionLost) {
		t.Errorf("Err: %v, want ErrSessionLost", l.Err())
	}
	if lost := time.Since(cut); lost > timing.RenewDeadline+timing.RetryPeriod {
		t.Errorf("Done closed %s after the store went out of reach, want within %s", lost, timing.RenewDeadline+timing.RetryPeriod)
	}
	s.setDown(false)
	// The record still names a; b waits a TTL from its first look.
	start := time.Now()
	h, err := leaserecord.Campaign(context.Background(), s, "b", timing)
	if err != nil {
		t.Fatal(err)
	}
	if h.Term != 2 {
		t.Errorf("b's term %d, want 2", h.Term)
	}
	if waited := time.Since(start); waited > timing.TTL+2*timing.RetryPeriod {
		t.Errorf("b waited %s for a record whose holder was gone, want about the TTL %s", waited, timing.TTL)
	}
}

// A campaign that cannot reach the store gives up with ErrSessionLost, and
// a refusal ends it at once.
func TestCampaignOutOfReach(t *testing.T) {
	s := &memStore{down: true}
	if _, err := leaserecord.Campaign(context.Background(), s, "a", timing); !errors.Is(err, cluster.ErrSessionLost) {
		t.Fatalf("err = %v, want ErrSessionLost", err)
	}
	refused := &leaserecord.RefusedError{Err: errors.New("forbidden")}
	if _, err := leaserecord.Campaign(context.Background(), refusing{refused}, "a", timing); !errors.Is(err, refused) {
		t.Fatalf("err = %v, want the refusal", err)
	}
}

type refusing struct{ err error }

func (r refusing) Get(context.Context) (leaserecord.Record, string, error) {
	return leaserecord.Record{}, "", r.err
}
func (r refusing) Put(context.Context, leaserecord.Record, string) (string, error) { return "", r.err }

// Resigning frees the record: the next candidate wins at once.
func TestResignFreesTheRecord(t *testing.T) {
	s := &memStore{}
	var book backend.Book
	l := lead(t, &book, s, "a")
	if err := l.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timing.RetryPeriod)
	defer cancel()
	h, err := leaserecord.Campaign(ctx, s, "b", timing)
	if err != nil {
		t.Fatalf("a candidate did not win a released record at once: %v", err)
	}
	if h.Term != 2 {
		t.Errorf("term %d, want 2", h.Term)
	}
}

// A holder that sees the record taken loses at once.
func TestTakenRecordEndsTheLeadership(t *testing.T) {
	s := &memStore{}
	var book backend.Book
	l := lead(t, &book, s, "a")
	s.mu.Lock()
	s.rec.Holder, s.version = "intruder", s.version+1
	s.mu.Unlock()
	select {
	case <-l.Done():
	case <-time.After(timing.RenewDeadline):
		t.Fatal("the holder did not notice the record was taken")
	}
	if !errors.Is(l.Err(), cluster.ErrSessionLost) {
		t.Errorf("Err: %v", l.Err())
	}
}

// countingStore counts reads, and can wake candidates (a Notifier).
type countingStore struct {
	memStore
	gets   atomic.Int32
	notify bool
	wake   chan struct{}
}

func (c *countingStore) Get(ctx context.Context) (leaserecord.Record, string, error) {
	c.gets.Add(1)
	return c.memStore.Get(ctx)
}

func (c *countingStore) Put(ctx context.Context, r leaserecord.Record, version string) (string, error) {
	v, err := c.memStore.Put(ctx, r, version)
	if err == nil && c.wake != nil {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return v, err
}

func (c *countingStore) Changed(ctx context.Context, _ string) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		select {
		case <-c.wake:
		case <-ctx.Done():
		}
	}()
	return ch
}

// A holder that keeps renewing keeps the record: a candidate's TTL starts
// again at every renewal it sees, and it reads once per period, not in a
// loop.
func TestRenewingHolderKeepsTheRecord(t *testing.T) {
	s := &countingStore{}
	var book backend.Book
	l := lead(t, &book, s, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 3*timing.TTL)
	defer cancel()
	s.gets.Store(0)
	if h, err := leaserecord.Campaign(ctx, s, "b", timing); err == nil {
		t.Fatalf("b took a record its holder kept renewing (term %d)", h.Term)
	}
	if l.Err() != nil {
		t.Fatalf("the renewing holder lost: %v", l.Err())
	}
	if n, most := s.gets.Load(), int32(3*timing.TTL/timing.RetryPeriod)+5; n > most {
		t.Errorf("the waiting candidate read the record %d times in %s, want about one read a period (at most %d)", n, 3*timing.TTL, most)
	}
}

// A candidate on a store that says when the record changes wins as soon
// as the holder resigns, not at its next read.
func TestNotifierWakesTheCandidate(t *testing.T) {
	slow := leaserecord.Timing{TTL: 8 * time.Second, RenewDeadline: 5 * time.Second, RetryPeriod: 2 * time.Second}
	s := &countingStore{notify: true, wake: make(chan struct{}, 1)}
	var book backend.Book
	entry, cctx, _ := book.Begin(context.Background(), "e", "a")
	h, err := leaserecord.Campaign(cctx, s, "a", slow)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	l, err := leaserecord.Lead(entry, s, "a", slow, h, wg.Go)
	defer wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	won := make(chan time.Time, 1)
	go func() {
		if _, err := leaserecord.Campaign(context.Background(), s, "b", slow); err == nil {
			won <- time.Now()
		}
	}()
	time.Sleep(100 * time.Millisecond) // b reads the held record and waits
	select {
	case <-s.wake: // b's wait arms after the holder's own writes
	default:
	}
	resigned := time.Now()
	if err := l.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-won:
		if at.Sub(resigned) > slow.RetryPeriod/2 {
			t.Errorf("b won %s after the resignation, want well within the read period %s", at.Sub(resigned), slow.RetryPeriod)
		}
	case <-time.After(2 * slow.RetryPeriod):
		t.Fatal("b did not win after the resignation")
	}
}

// A campaign keeps trying for RenewDeadline before it gives up.
func TestCampaignTriesForTheRenewDeadline(t *testing.T) {
	start := time.Now()
	if _, err := leaserecord.Campaign(context.Background(), &memStore{down: true}, "a", timing); !errors.Is(err, cluster.ErrSessionLost) {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took < timing.RenewDeadline {
		t.Errorf("gave up after %s, before the renew deadline %s", took, timing.RenewDeadline)
	}
}

// lossyStore applies the next Put but answers it with an error, as a
// request whose reply was lost.
type lossyStore struct {
	memStore
	lose atomic.Bool
}

func (l *lossyStore) Put(ctx context.Context, r leaserecord.Record, version string) (string, error) {
	v, err := l.memStore.Put(ctx, r, version)
	if err == nil && l.lose.CompareAndSwap(true, false) {
		return "", errors.New("reply lost")
	}
	return v, err
}

// A renewal that landed with its reply lost is recognised as ours at the
// next renewal's conflict: the leadership holds.
func TestRenewalWithALostReplyIsKept(t *testing.T) {
	s := &lossyStore{}
	var book backend.Book
	l := lead(t, &book, s, "a")
	s.lose.Store(true)
	time.Sleep(timing.TTL)
	if l.Err() != nil {
		t.Fatalf("the holder lost after one renewal's reply was lost: %v", l.Err())
	}
	s.mu.Lock()
	holder := s.rec.Holder
	s.mu.Unlock()
	if holder != "a" {
		t.Errorf("holder %q", holder)
	}
}

// Release reports a store that cannot be reached, and not a record that
// someone else already took.
func TestRelease(t *testing.T) {
	s := &memStore{}
	var book backend.Book
	l := lead(t, &book, s, "a")
	s.setDown(true)
	if err := l.Resign(context.Background()); err == nil {
		t.Error("Resign with the store out of reach returned nil")
	}
	s.setDown(false)
	l2 := lead(t, &backend.Book{}, s, "b")
	s.mu.Lock()
	s.rec.Holder, s.version = "c", s.version+1
	s.mu.Unlock()
	if err := l2.Resign(context.Background()); err != nil {
		t.Errorf("Resign of a record already taken: %v", err)
	}
}

func TestCheckTiming(t *testing.T) {
	for _, c := range []struct {
		ttl, renew time.Duration
		bad        string
	}{
		{10 * time.Second, time.Second, ""},
		{3 * time.Second, 750 * time.Millisecond, ""},
		{2 * time.Second, 100 * time.Millisecond, "electionTTL"},
		{3500 * time.Millisecond, 100 * time.Millisecond, "electionTTL"},
		{4 * time.Second, 1001 * time.Millisecond, "electionRenewPeriod"},
		{4 * time.Second, 0, "electionRenewPeriod"},
	} {
		bad, accepted := leaserecord.CheckTiming(c.ttl, c.renew)
		if bad != c.bad || (bad != "") != (accepted != "") {
			t.Errorf("CheckTiming(%s, %s) = %q, %q; want key %q", c.ttl, c.renew, bad, accepted, c.bad)
		}
		if bad == "electionRenewPeriod" && !strings.Contains(accepted, (c.ttl/4).String()) {
			t.Errorf("CheckTiming(%s, %s): %q does not name the largest period accepted, %s", c.ttl, c.renew, accepted, c.ttl/4)
		}
	}
}

// Observe shows the holder, then nobody once the holder has stopped
// renewing for a TTL, or released the record.
func TestObserve(t *testing.T) {
	s := &memStore{}
	var book backend.Book
	l := lead(t, &book, s, "a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan cluster.Leader, 100)
	go leaserecord.Observe(ctx, s, timing, func(ld cluster.Leader) { seen <- ld })
	want := func(what string, ok func(cluster.Leader) bool) {
		t.Helper()
		deadline := time.After(3 * timing.TTL)
		for {
			select {
			case ld := <-seen:
				if ok(ld) {
					return
				}
			case <-deadline:
				t.Fatalf("never observed %s", what)
			}
		}
	}
	want("a leading", func(ld cluster.Leader) bool { return ld == cluster.Leader{ID: "a", Term: l.Term()} })
	s.setDown(true) // a stops renewing; the record still names a
	<-l.Done()
	s.setDown(false)
	want("nobody, a TTL later", func(ld cluster.Leader) bool { return ld == cluster.Leader{} })
}

// Elect gives back the campaign's error with what it was for, and frees
// the name; a campaign whose context ended says so.
func TestElect(t *testing.T) {
	var book backend.Book
	entry, cctx, _ := book.Begin(context.Background(), "e", "a")
	_, err := leaserecord.Elect(cctx, entry, "test: campaign", refusing{&leaserecord.RefusedError{Err: errors.New("forbidden")}}, "a", timing, func(f func()) { go f() })
	if err == nil || !strings.HasPrefix(err.Error(), "test: campaign: ") {
		t.Fatalf("err = %v", err)
	}
	entry, cctx, err = book.Begin(context.Background(), "e", "a")
	if err != nil {
		t.Fatalf("the name was not freed: %v", err)
	}
	entry.Cancel(context.Canceled)
	if _, err := leaserecord.Elect(cctx, entry, "test: campaign", &memStore{down: true}, "a", timing, func(f func()) { go f() }); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	var wg sync.WaitGroup
	entry, cctx, _ = book.Begin(context.Background(), "e", "a")
	l, err := leaserecord.Elect(cctx, entry, "test: campaign", &memStore{}, "a", timing, wg.Go)
	if err != nil || l.Term() != 1 {
		t.Fatalf("Elect on a free record: %v", err)
	}
	_ = l.Resign(context.Background())
	wg.Wait()
}

// TestWinAfterTheCampaignEndedLeavesNothingBehind: a campaign whose
// context ends between the win and Lead (its caller gave up, or its
// session was lost) gets an error, the record is freed, and no release is
// left waiting for a renewal loop that never started.
func TestWinAfterTheCampaignEndedLeavesNothingBehind(t *testing.T) {
	leakcheck.Register(t)
	s := &memStore{}
	var book backend.Book
	ctx, cancel := context.WithCancel(context.Background())
	entry, cctx, err := book.Begin(ctx, "e", "a")
	if err != nil {
		t.Fatal(err)
	}
	h, err := leaserecord.Campaign(cctx, s, "a", timing)
	if err != nil {
		t.Fatal(err)
	}
	cancel() // the caller gives up as the win arrives
	var wg sync.WaitGroup
	if l, err := leaserecord.Lead(entry, s, "a", timing, h, wg.Go); err == nil {
		t.Fatalf("Lead after the campaign ended: %v, want an error", l)
	}
	wg.Wait()
	if rec, _, _ := s.Get(context.Background()); rec.Holder != "" {
		t.Errorf("the record is still held by %q", rec.Holder)
	}
}
