package leaserecord_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/elect"
	"github.com/herd-go/herd/internal/leaserecord"
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

func lead(t *testing.T, book *elect.Book, s leaserecord.Store, id string) *cluster.Leadership {
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
	t.Cleanup(wg.Wait)
	l, err := leaserecord.Lead(entry, s, id, timing, h, wg.Go)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A holder that cannot renew gives up RenewDeadline after its last renewal,
// before a candidate, which counts a whole TTL from its first sight of that
// renewal, takes the record.
func TestLostRenewalsEndTheLeadershipBeforeATakeover(t *testing.T) {
	s := &memStore{}
	var book elect.Book
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
	var book elect.Book
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
	var book elect.Book
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
