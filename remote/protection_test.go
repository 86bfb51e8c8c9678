package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/remote"
)

// peers returns n valid peers p1…pn.
func peers(n int) []cluster.Node {
	out := make([]cluster.Node, n)
	for i := range out {
		out[i] = node(fmt.Sprintf("p%d", i+1), fmt.Sprintf("10.0.1.%d", i+1), 1)
	}
	return out
}

func refresh(t *testing.T, m *remote.Manager) error {
	t.Helper()
	return m.Refresh(context.Background())
}

func viewIDs(m *remote.Manager) string { return fmt.Sprint(ids(m.Snapshot().Nodes())) }

func TestProtectionHoldsMassRemovalUntilConfirmed(t *testing.T) {
	all := peers(5)
	src := newFake(all...)
	confirm := 300 * time.Millisecond
	m, _ := newManager(t, src, remote.WithProtection(0.5, confirm))
	if viewIDs(m) != "[self p1 p2 p3 p4 p5]" {
		t.Fatalf("view = %s", viewIDs(m))
	}

	// The backend comes back empty but for p5 and a newcomer.
	newcomer := node("n1", "10.0.2.1", 1)
	src.set([]cluster.Node{all[4], newcomer}, nil)
	err := refresh(t, m)
	if !errors.Is(err, remote.ErrHoldingRemovals) || !errors.Is(m.Err(), remote.ErrHoldingRemovals) {
		t.Fatalf("Refresh = %v, Err = %v; want ErrHoldingRemovals", err, m.Err())
	}
	if viewIDs(m) != "[self p1 p2 p3 p4 p5 n1]" {
		t.Fatalf("view while holding = %s, want the newcomer added and nobody removed", viewIDs(m))
	}
	st := m.Stats()
	if st.Holds != 1 || fmt.Sprint(ids(st.Held)) != "[p1 p2 p3 p4]" {
		t.Fatalf("Stats = %+v, want one hold of p1-p4", st)
	}

	// A query begun before the confirm period is over does not confirm.
	if err := refresh(t, m); !errors.Is(err, remote.ErrHoldingRemovals) || viewIDs(m) != "[self p1 p2 p3 p4 p5 n1]" {
		t.Fatalf("early query: err %v, view %s; want still holding", err, viewIDs(m))
	}
	if m.Stats().Holds != 1 {
		t.Fatalf("Holds = %d after a second answer of the same hold, want 1", m.Stats().Holds)
	}

	// The Manager confirms by itself with a query after the period.
	deadline := time.Now().Add(5 * time.Second)
	for viewIDs(m) != "[self p5 n1]" {
		if time.Now().After(deadline) {
			t.Fatalf("view = %s, Err %v: the hold was not confirmed", viewIDs(m), m.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m.Err() != nil || m.Stats().Held != nil {
		t.Fatalf("after confirming: Err %v, Held %v", m.Err(), m.Stats().Held)
	}
}

// beginHold starts a Manager on p1…p4 with a confirm period of 100 ms, and
// refreshes it once with an answer of p1 alone, which begins a hold.
func beginHold(t *testing.T) (*fakeMembership, *remote.Manager) {
	t.Helper()
	src := newFake(peers(4)...)
	m, _ := newManager(t, src, remote.WithProtection(0.5, 100*time.Millisecond))
	src.set(peers(1), nil)
	if err := refresh(t, m); !errors.Is(err, remote.ErrHoldingRemovals) {
		t.Fatalf("Refresh = %v, want ErrHoldingRemovals", err)
	}
	return src, m
}

// TestAHoldIsConfirmedByItself: the answer that begins a hold is the only
// one the Manager gets (its periodic query is an hour away), and it still
// asks again once the confirm period is over and drops the nodes.
func TestAHoldIsConfirmedByItself(t *testing.T) {
	_, m := beginHold(t)
	clusterwait.WaitUntil(t, 5*time.Second, "the hold confirmed after its period: a view of [self p1]", func() bool {
		return viewIDs(m) == "[self p1]"
	})
}

// TestAFailedConfirmationIsTriedAgain: when the query that would confirm a
// hold fails, the Manager keeps holding and asks again a period later,
// rather than leaving the hold to the next periodic query.
func TestAFailedConfirmationIsTriedAgain(t *testing.T) {
	src, m := beginHold(t)
	src.set(nil, errors.New("backend down"))
	asked := src.queries.Load()
	clusterwait.WaitUntil(t, 5*time.Second, "the Manager trying to confirm the hold", func() bool {
		return src.queries.Load() != asked
	})
	if viewIDs(m) != "[self p1 p2 p3 p4]" {
		t.Fatalf("view after a failed confirmation = %s, want every node still held", viewIDs(m))
	}
	src.set(peers(1), nil)
	clusterwait.WaitUntil(t, 5*time.Second, "the hold confirmed at the next try: a view of [self p1]", func() bool {
		return viewIDs(m) == "[self p1]"
	})
}

func TestProtectionEndsWhenTheNodesRegisterAgain(t *testing.T) {
	all := peers(4)
	src := newFake(all...)
	m, d := newManager(t, src, remote.WithProtection(0.5, time.Hour))
	before := m.Snapshot()
	src.set(all[:1], nil)
	if err := refresh(t, m); !errors.Is(err, remote.ErrHoldingRemovals) {
		t.Fatalf("Refresh = %v, want a hold", err)
	}
	src.set(all[:3], nil)
	if err := refresh(t, m); !errors.Is(err, remote.ErrHoldingRemovals) || fmt.Sprint(ids(m.Stats().Held)) != "[p4]" {
		t.Fatalf("two back: err %v, held %v; want p4 still held", err, ids(m.Stats().Held))
	}
	src.set(all, nil)
	if err := refresh(t, m); err != nil || m.Err() != nil || m.Stats().Held != nil {
		t.Fatalf("all back: Refresh %v, Err %v, Held %v; want the hold over", err, m.Err(), m.Stats().Held)
	}
	if m.Snapshot() != before || d.count() != 4 {
		t.Fatalf("view %s (version %d, was %d), %d dials: nobody should have been removed or redialled",
			viewIDs(m), m.Snapshot().Version, before.Version, d.count())
	}
}

func TestProtectionNeverHoldsOneLeave(t *testing.T) {
	src := newFake(peers(2)...)
	m, _ := newManager(t, src) // the defaults
	src.set(peers(1), nil)
	if err := refresh(t, m); err != nil || viewIDs(m) != "[self p1]" {
		t.Fatalf("one of two peers left: err %v, view %s; want it gone at once", err, viewIDs(m))
	}
	// A rolling restart that keeps IDs: each node leaves and comes back.
	src.set(peers(2), nil)
	_ = refresh(t, m)
	for i := range 2 {
		rest := peers(2)
		src.set(append(rest[:i:i], rest[i+1:]...), nil)
		if err := refresh(t, m); err != nil || m.Snapshot().Len() != 2 {
			t.Fatalf("rolling restart, p%d down: err %v, view %s", i+1, err, viewIDs(m))
		}
		src.set(peers(2), nil)
		_ = refresh(t, m)
	}
}

func TestProtectionCountsLeavesWithinThePeriod(t *testing.T) {
	all := peers(4)
	src := newFake(all...)
	m, _ := newManager(t, src, remote.WithProtection(0.5, time.Hour))
	// One by one: 1 of 4, then 2 of 4 have left: at the threshold, applied.
	for n := 3; n >= 2; n-- {
		src.set(all[:n], nil)
		if err := refresh(t, m); err != nil || m.Snapshot().Len() != n+1 {
			t.Fatalf("down to %d peers: err %v, view %s", n, err, viewIDs(m))
		}
	}
	// A third within the period is more than half of the four.
	src.set(all[:1], nil)
	if err := refresh(t, m); !errors.Is(err, remote.ErrHoldingRemovals) || viewIDs(m) != "[self p1 p2]" {
		t.Fatalf("third leave: err %v, view %s; want p2 held", err, viewIDs(m))
	}
}

func TestProtectionWatchPushIsNeverAConfirmation(t *testing.T) {
	all := peers(3)
	src := newFake(all...)
	m, _ := newManager(t, src, remote.WithProtection(0.5, 50*time.Millisecond), remote.WithRefreshInterval(time.Hour))
	src.set(all, errors.New("backend down")) // the confirming queries fail
	src.watch <- []cluster.Node{}            // an empty push is ignored (KeepLastView)
	src.watch <- all[:1]
	deadline := time.Now().Add(2 * time.Second)
	for m.Stats().Held == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no hold; view %s", viewIDs(m))
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // several confirm periods, every query failing
	src.watch <- all[:1]
	time.Sleep(50 * time.Millisecond)
	if viewIDs(m) != "[self p1 p2 p3]" {
		t.Fatalf("view = %s: removals applied without a successful query", viewIDs(m))
	}
}

func TestProtectionOff(t *testing.T) {
	src := newFake(peers(5)...)
	m, _ := newManager(t, src, remote.WithProtection(1, 0))
	src.set(peers(1), nil)
	if err := refresh(t, m); err != nil || viewIDs(m) != "[self p1]" {
		t.Fatalf("protection off: err %v, view %s; want the removals applied", err, viewIDs(m))
	}
	if m.Stats().Holds != 0 {
		t.Fatalf("Holds = %d", m.Stats().Holds)
	}
}

func TestWithProtectionRefusesBadValues(t *testing.T) {
	for _, c := range []struct {
		threshold float64
		confirm   time.Duration
		want      string
	}{
		{0, time.Second, "threshold 0 must be"},
		{-0.5, time.Second, "threshold -0.5 must be"},
		{1.5, time.Second, "threshold 1.5 must be"},
		{0.5, 0, "confirm period 0s must be positive"},
		{0.5, -time.Second, "confirm period -1s must be positive"},
	} {
		_, err := remote.NewManager(newFake(), self, remote.NewServer(), remote.WithProtection(c.threshold, c.confirm))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("WithProtection(%v, %v): %v, want %q", c.threshold, c.confirm, err, c.want)
		}
	}
}

func TestRefusesNodesPeersCannotDial(t *testing.T) {
	var logs bytes.Buffer
	good := node("good", "10.0.0.1", 1)
	bad := []cluster.Node{
		node("scheme", "http://10.0.0.2", 1),
		node("spaces", "a host", 1),
		node("wildcard", "0.0.0.0", 1),
		node("port", "10.0.0.3", 0),
		node("bad id!", "10.0.0.4", 1),
	}
	src := newFake(append([]cluster.Node{good}, bad...)...)
	m, d := newManager(t, src, remote.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	for range 3 {
		if err := refresh(t, m); err != nil {
			t.Fatal(err)
		}
	}
	if viewIDs(m) != "[good self]" || d.count() != 1 {
		t.Fatalf("view = %s, %d dials; want only the good node, dialled once", viewIDs(m), d.count())
	}
	if got := m.Stats().Refused; got != uint64(len(bad)) {
		t.Fatalf("Refused = %d after three answers, want %d (once each)", got, len(bad))
	}
	if n := strings.Count(logs.String(), "refusing a node"); n != len(bad) {
		t.Fatalf("%d log lines, want one per bad node:\n%s", n, logs.String())
	}
	// Dropped and listed again: it is counted again.
	src.set([]cluster.Node{good}, nil)
	_ = refresh(t, m)
	src.set([]cluster.Node{good, bad[0]}, nil)
	_ = refresh(t, m)
	if got := m.Stats().Refused; got != uint64(len(bad))+1 {
		t.Fatalf("Refused = %d, want %d", got, len(bad)+1)
	}
}

func TestProtectionIsOnByDefault(t *testing.T) {
	src := newFake(peers(4)...)
	m, _ := newManager(t, src)
	src.set(peers(1), nil)
	if err := refresh(t, m); !errors.Is(err, remote.ErrHoldingRemovals) || m.Snapshot().Len() != 5 {
		t.Fatalf("3 of 4 peers dropped with the defaults: err %v, view %s; want them held", err, viewIDs(m))
	}
}

// TestChurnBesideAStableCoreIsNeverHeld: short-lived nodes that join and
// leave again, one after another within the confirm period, leave the view
// at once however many there have been; the stable core, wiped, is still held.
func TestChurnBesideAStableCoreIsNeverHeld(t *testing.T) {
	core := peers(5)
	src := newFake(core...)
	m, _ := newManager(t, src, remote.WithProtection(0.5, time.Hour))
	for i := range 30 {
		short := node(fmt.Sprintf("s%d", i), fmt.Sprintf("10.0.3.%d", i+1), 1)
		src.set(append(peers(5), short), nil)
		if err := refresh(t, m); err != nil {
			t.Fatalf("churner %d joining: %v", i, err)
		}
		src.set(peers(5), nil)
		if err := refresh(t, m); err != nil {
			t.Fatalf("churner %d leaving: %v (after %d others left within the confirm period)", i, err, i)
		}
		if got := viewIDs(m); got != "[self p1 p2 p3 p4 p5]" {
			t.Fatalf("after churner %d left: view %s, want the core alone", i, got)
		}
	}
	if m.Stats().Holds != 0 {
		t.Fatalf("Holds = %d after churn alone", m.Stats().Holds)
	}
	// A mass removal of the core is still held.
	src.set(core[:1], nil)
	if err := refresh(t, m); !errors.Is(err, remote.ErrHoldingRemovals) || viewIDs(m) != "[self p1 p2 p3 p4 p5]" {
		t.Fatalf("the core wiped after churn: err %v, view %s; want a hold", err, viewIDs(m))
	}
}

// TestRemovalAfterAnOutageIsHeld: a backend that answers again after
// failed queries may have come back empty and be refilling; a single peer
// it no longer lists is held until a query a confirm period after the
// return confirms it (outside that window, one leave is never held).
func TestRemovalAfterAnOutageIsHeld(t *testing.T) {
	all := peers(2)
	src := newFake(all...)
	confirm := 300 * time.Millisecond
	m, _ := newManager(t, src, remote.WithProtection(0.5, confirm))
	src.set(nil, errors.New("server down"))
	if err := refresh(t, m); err == nil {
		t.Fatal("a failed query reported no error")
	}
	src.set(all[:1], nil)
	if err := refresh(t, m); !errors.Is(err, remote.ErrHoldingRemovals) || viewIDs(m) != "[self p1 p2]" {
		t.Fatalf("the first answer after the outage, without p2: err %v, view %s; want p2 held", err, viewIDs(m))
	}
	src.set(all, nil) // p2 registered again
	if err := refresh(t, m); err != nil || viewIDs(m) != "[self p1 p2]" || m.Stats().Held != nil {
		t.Fatalf("p2 back: err %v, view %s, held %v", err, viewIDs(m), m.Stats().Held)
	}
	// Past the window, one leave goes at once again.
	time.Sleep(confirm)
	src.set(all[:1], nil)
	if err := refresh(t, m); err != nil || viewIDs(m) != "[self p1]" {
		t.Fatalf("a leave after the window: err %v, view %s; want it applied", err, viewIDs(m))
	}
}

// Peers that say they are leaving (cluster.StateLeaving) leave the view at
// once, however many leave together, and their entries vanishing next is
// no loss: protection holds only what vanished without a word.
func TestGracefulLeavesAreNotHeld(t *testing.T) {
	all := peers(6)
	src := newFake(all...)
	m, _ := newManager(t, src, remote.WithProtection(0.5, 10*time.Second))
	leaving := func(n cluster.Node) cluster.Node {
		n.Meta = map[string]string{cluster.MetaState: cluster.StateLeaving}
		return n
	}
	// Four of six long-lived peers leave: each says so, then its entry goes.
	src.set([]cluster.Node{leaving(all[0]), leaving(all[1]), leaving(all[2]), leaving(all[3]), all[4], all[5]}, nil)
	if err := refresh(t, m); err != nil {
		t.Fatalf("Refresh with four leaving: %v", err)
	}
	if viewIDs(m) != "[self p5 p6]" {
		t.Fatalf("view = %s, want the leaving peers gone at once", viewIDs(m))
	}
	src.set([]cluster.Node{all[4], all[5]}, nil)
	if err := refresh(t, m); err != nil {
		t.Fatalf("Refresh once their entries are gone: %v", err)
	}
	if st := m.Stats(); st.Holds != 0 || viewIDs(m) != "[self p5 p6]" {
		t.Fatalf("Stats %+v, view %s: graceful leaves were held", st, viewIDs(m))
	}
	// The same four vanishing without the mark would have been held.
	src2 := newFake(all...)
	m2, _ := newManager(t, src2, remote.WithProtection(0.5, 10*time.Second))
	src2.set([]cluster.Node{all[4], all[5]}, nil)
	if err := refresh(t, m2); !errors.Is(err, remote.ErrHoldingRemovals) {
		t.Fatalf("four vanishing unannounced: %v, want ErrHoldingRemovals", err)
	}
}
