package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
)

// Election adapts a backend's election to the suite. Every coordinator the
// harness makes must implement cluster.Elector.
type Election struct {
	// Partitioned returns a coordinator whose connection to the server the
	// test can cut (through a testserver.Proxy), and the cut. From the
	// server's side a cut is a crash: renewals stop and nothing is released.
	Partitioned func(t *testing.T) (cluster.Coordinator, func())
	// TakeoverWithin bounds how long after a crash another candidate wins:
	// the backend's TTL (as the harness configures it) plus its margin.
	TakeoverWithin time.Duration
	// Gone, if set, does what the platform does once a cut-off node's
	// process is gone, where no backend session does it (Kubernetes: the
	// pod goes). The slot tests call it after a cut.
	Gone func(t *testing.T, n cluster.Node)
	// HandoverWithin bounds how long after a resignation another candidate
	// wins; default 2s.
	HandoverWithin time.Duration
}

// rounds is how many successive leaders the terms test elects: 20
// handovers, timed.
const rounds = 21

func runElection(t *testing.T, h Harness) {
	c := h.NewCoordinator(t)
	closeOnCleanup(t, c)
	e := *h.Election
	if e.HandoverWithin == 0 {
		e.HandoverWithin = 2 * time.Second
	}
	t.Run("CampaignChecksItsInput", func(t *testing.T) { testCampaignInput(t, h) })
	t.Run("CloseEndsLeadership", func(t *testing.T) { testCloseEndsLeadership(t, h) })
	if h.SingleNode {
		t.Run("SelfLeadsAtOnce", func(t *testing.T) { testSuccessiveLeaders(t, h, e, 1) })
		return
	}
	t.Run("OneLeaderAmongThree", func(t *testing.T) { testOneLeader(t, h) })
	t.Run("SimultaneousFirstCampaigns", func(t *testing.T) { testSimultaneousFirstCampaigns(t, h) })
	t.Run("TermsIncreaseAcrossLeaders", func(t *testing.T) { testSuccessiveLeaders(t, h, e, 3) })
	if e.Partitioned != nil {
		t.Run("CrashHandsOverAfterDone", func(t *testing.T) { testCrashTakeover(t, h, e) })
		t.Run("BlockedCampaignEndsWithSession", func(t *testing.T) { testBlockedCampaign(t, h, e) })
	}
	if h.Recovery != nil {
		t.Run("ServerRestartNeverTwoLeaders", func(t *testing.T) { testElectionRestart(t, h) })
		t.Run("ResignWhileServerDown", func(t *testing.T) { testResignWhileDown(t, h) })
	}
}

// contender is a registered coordinator, a candidate in the election tests.
type contender struct {
	cluster.Elector
	Coordinator cluster.Coordinator
	Node        cluster.Node
}

func candidate(t *testing.T, h Harness, c cluster.Coordinator) contender {
	t.Helper()
	n := clusterwait.NewNode()
	if err := h.Register(t, c, n); err != nil {
		t.Fatal(err)
	}
	return contender{Elector: c, Coordinator: c, Node: n}
}

func candidates(t *testing.T, h Harness, n int) []contender {
	t.Helper()
	cs := make([]contender, n)
	for i := range cs {
		c := h.NewCoordinator(t)
		closeOnCleanup(t, c)
		cs[i] = candidate(t, h, c)
	}
	return cs
}

// won is the outcome of one campaign.
type won struct {
	who  int
	lead *cluster.Leadership
	err  error
	at   time.Time
}

func campaign(ctx context.Context, who int, e cluster.Elector, name string, out chan<- won) {
	l, err := e.Campaign(ctx, name)
	out <- won{who: who, lead: l, err: err, at: time.Now()}
}

// settleWithin bounds how long the suite waits for a campaign to end where
// no crash or TTL is involved: a first leader, the next after a
// resignation, a campaign whose context ended. It is far above what any
// backend takes; an election that never settles then fails the test in
// seconds, with what was awaited, rather than at the package's time limit.
const settleWithin = 30 * time.Second

// nextResult waits up to settleWithin for the next campaign to end.
func nextResult(t testing.TB, results <-chan won, what string) won {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(settleWithin):
		t.Fatalf("%s: no campaign ended within %s", what, settleWithin)
		return won{}
	}
}

func electionName() string { return "e" + cluster.NewID()[:8] }

func testCampaignInput(t *testing.T, h Harness) {
	c := h.NewCoordinator(t)
	closeOnCleanup(t, c)
	if _, err := c.Campaign(ctx(t), electionName()); !errors.Is(err, cluster.ErrNotRegistered) {
		t.Fatalf("Campaign before RegisterRemote: %v, want ErrNotRegistered", err)
	}
	cand := candidate(t, h, c)
	for _, bad := range []string{"", "Upper", "a/b", "-a", string(make([]byte, 64))} {
		if _, err := c.Campaign(ctx(t), bad); err == nil {
			t.Errorf("Campaign(%q) accepted a bad name", bad)
		}
	}
	name := electionName()
	l, err := c.Campaign(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Campaign(ctx(t), name); err == nil {
		t.Error("a second Campaign for an election this node leads did not fail")
	}
	clusterwait.WaitLeader(t, c.Observe(watchCtx(t), name), 2*time.Second, "self observed as leader", func(ld cluster.Leader) bool {
		return ld == cluster.Leader{ID: cand.Node.ID, Term: l.Term()}
	})
	if err := l.Resign(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(l.Err(), cluster.ErrResigned) {
		t.Errorf("Err after Resign: %v, want ErrResigned", l.Err())
	}
	again, err := c.Campaign(ctx(t), name)
	if err != nil {
		t.Fatalf("campaigning again after resigning: %v", err)
	}
	if again.Term() <= l.Term() {
		t.Errorf("this node's second term %d is not above its first %d", again.Term(), l.Term())
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Campaign(cancelled, electionName()); !errors.Is(err, context.Canceled) {
		t.Errorf("Campaign with an ended context: %v, want context.Canceled", err)
	}
}

func testCloseEndsLeadership(t *testing.T, h Harness) {
	c := h.NewCoordinator(t)
	cand := candidate(t, h, c)
	name := electionName()
	l, err := cand.Campaign(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	obs := cand.Observe(watchCtx(t), name)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Done():
	default:
		t.Fatal("Close returned with the leadership's Done still open")
	}
	if !errors.Is(l.Err(), cluster.ErrClosed) {
		t.Errorf("Err after Close: %v, want ErrClosed", l.Err())
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, open := <-obs:
			if !open {
				if _, err := cand.Campaign(ctx(t), name); !errors.Is(err, cluster.ErrClosed) {
					t.Errorf("Campaign after Close: %v, want ErrClosed", err)
				}
				return
			}
		case <-deadline:
			t.Fatal("Close did not close an Observe channel")
		}
	}
}

func testOneLeader(t *testing.T, h Harness) {
	cs := candidates(t, h, 3)
	name := electionName()
	results := make(chan won, len(cs))
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i, c := range cs {
		go campaign(cctx, i, c, name, results)
	}
	first := nextResult(t, results, "the first leader among three")
	if first.err != nil {
		t.Fatalf("candidate %d: %v", first.who, first.err)
	}
	select {
	case second := <-results:
		t.Fatalf("two leaders at once: candidates %d and %d (err %v)", first.who, second.who, second.err)
	case <-time.After(time.Second):
	}
	want := cluster.Leader{ID: cs[first.who].Node.ID, Term: first.lead.Term()}
	for i, c := range cs {
		clusterwait.WaitLeader(t, c.Observe(watchCtx(t), name), h.Within, fmt.Sprintf("candidate %d observes the leader", i), func(l cluster.Leader) bool { return l == want })
	}
	cancel()
	for range len(cs) - 1 {
		if r := nextResult(t, results, "a waiting campaign whose context ended"); !errors.Is(r.err, context.Canceled) {
			t.Errorf("a waiting campaign whose context ended returned %v", r.err)
		}
	}
	if err := first.lead.Resign(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

// firstCampaignRounds is how many fresh elections the simultaneous-first-
// campaigns test runs: the first campaigns of an election race to create
// whatever the backend keeps it in, which is where a store that answers
// "created" to the loser of a concurrent create elects two.
const firstCampaignRounds = 8

// testSimultaneousFirstCampaigns starts four candidates' campaigns at the
// same moment on elections nobody has campaigned for yet.
func testSimultaneousFirstCampaigns(t *testing.T, h Harness) {
	cs := candidates(t, h, 4)
	for round := range firstCampaignRounds {
		name := electionName()
		results := make(chan won, len(cs))
		start := make(chan struct{})
		cctx, cancel := context.WithCancel(context.Background())
		for i, c := range cs {
			go func() {
				<-start
				campaign(cctx, i, c, name, results)
			}()
		}
		close(start)
		first := nextResult(t, results, fmt.Sprintf("round %d: the first leader", round))
		if first.err != nil {
			cancel()
			t.Fatalf("round %d, candidate %d: %v", round, first.who, first.err)
		}
		select {
		case second := <-results:
			cancel()
			t.Fatalf("round %d: two leaders at once: candidates %d (term %d) and %d (err %v)", round, first.who, first.lead.Term(), second.who, second.err)
		case <-time.After(500 * time.Millisecond):
		}
		cancel()
		for range len(cs) - 1 {
			if r := nextResult(t, results, fmt.Sprintf("round %d: a waiting campaign whose context ended", round)); r.err == nil {
				t.Fatalf("round %d: candidate %d won after its context ended", round, r.who)
			}
		}
		if err := first.lead.Resign(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
}

// testSuccessiveLeaders elects rounds leaders in a row among n candidates,
// each resigning once it wins, and checks every term is above the last.
func testSuccessiveLeaders(t *testing.T, h Harness, e Election, n int) {
	cs := candidates(t, h, n)
	name := electionName()
	results := make(chan won, n)
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i, c := range cs {
		go campaign(cctx, i, c, name, results)
	}
	var last uint64
	var handovers []time.Duration
	for round := range rounds {
		var r won
		select {
		case r = <-results:
		case <-time.After(e.HandoverWithin + 10*time.Second):
			t.Fatalf("round %d: nobody won within %s of the last resignation", round, e.HandoverWithin+10*time.Second)
		}
		if r.err != nil {
			t.Fatalf("round %d, candidate %d: %v", round, r.who, r.err)
		}
		if r.lead.Term() <= last {
			t.Fatalf("round %d: term %d is not above the previous leader's %d", round, r.lead.Term(), last)
		}
		last = r.lead.Term()
		resigned := time.Now()
		if err := r.lead.Resign(ctx(t)); err != nil {
			t.Fatalf("round %d: Resign: %v", round, err)
		}
		go campaign(cctx, r.who, cs[r.who], name, results)
		if n > 1 && round < rounds-1 {
			// Handover: the next win, timed from the resignation.
			next := nextResult(t, results, fmt.Sprintf("round %d: the next leader after a resignation", round))
			handovers = append(handovers, next.at.Sub(resigned))
			results <- next
		}
	}
	if len(handovers) > 0 {
		p50, p99 := clusterwait.Percentiles(handovers)
		t.Logf("resign → next leader over %d handovers: p50 %s, p99 %s", len(handovers), p50, p99)
		if p99 > e.HandoverWithin {
			t.Errorf("a resignation took %s to hand over, want within %s", p99, e.HandoverWithin)
		}
	}
	cancel()
}

// testCrashTakeover cuts the leader off from its server: another candidate
// must win within the takeover bound, and only after the old leader's Done
// closed. HERD_ELECTION_CRASH_ROUNDS=n repeats it n times and logs the
// takeover's p50 and p99 (docs/benchmarks.md).
func testCrashTakeover(t *testing.T, h Harness, e Election) {
	rounds, _ := strconv.Atoi(os.Getenv("HERD_ELECTION_CRASH_ROUNDS"))
	var takeovers []time.Duration
	for round := range max(rounds, 1) {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) { takeovers = append(takeovers, crashRound(t, h, e)) })
		if t.Failed() {
			return
		}
	}
	if len(takeovers) > 1 {
		p50, p99 := clusterwait.Percentiles(takeovers)
		t.Logf("crash → new leader over %d rounds: p50 %s, p99 %s", len(takeovers), p50, p99)
	}
}

func crashRound(t *testing.T, h Harness, e Election) time.Duration {
	pc, cut := e.Partitioned(t)
	t.Cleanup(func() { _ = pc.Close() }) // cut off, it cannot deregister
	leader := candidate(t, h, pc)
	others := candidates(t, h, 2)
	name := electionName()
	l, err := leader.Campaign(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	doneAt := make(chan time.Time, 1)
	go func() { <-l.Done(); doneAt <- time.Now() }()
	results := make(chan won, len(others))
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i, c := range others {
		go campaign(cctx, i, c, name, results)
	}
	time.Sleep(200 * time.Millisecond) // both wait behind the leader
	cutAt := time.Now()
	cut()
	var r won
	select {
	case r = <-results:
	case <-time.After(e.TakeoverWithin + 5*time.Second):
		t.Fatalf("nobody took over within %s of the leader's crash", e.TakeoverWithin+5*time.Second)
	}
	if r.err != nil {
		t.Fatalf("campaign: %v", r.err)
	}
	var closed time.Time
	select {
	case closed = <-doneAt:
	default:
		t.Fatal("a new leader won while the crashed leader's Done was still open: two leaders")
	}
	if !closed.Before(r.at) {
		t.Fatalf("the old Done closed at %s, not before the new leader won at %s", closed, r.at)
	}
	if !errors.Is(l.Err(), cluster.ErrSessionLost) {
		t.Errorf("the crashed leader's Err: %v, want ErrSessionLost", l.Err())
	}
	if r.lead.Term() <= l.Term() {
		t.Errorf("the new term %d is not above the crashed leader's %d", r.lead.Term(), l.Term())
	}
	takeover := r.at.Sub(cutAt)
	t.Logf("crash → new leader %s (the old Done closed %s after the crash, %s before the win)",
		takeover.Round(time.Millisecond), closed.Sub(cutAt).Round(time.Millisecond), r.at.Sub(closed).Round(time.Millisecond))
	if takeover > e.TakeoverWithin {
		t.Errorf("takeover took %s, want within %s", takeover.Round(time.Millisecond), e.TakeoverWithin)
	}
	if err := r.lead.Resign(ctx(t)); err != nil {
		t.Error(err)
	}
	return takeover
}

// testBlockedCampaign: a campaign waiting behind a leader, on a coordinator
// that loses its server, must return an error rather than wait forever.
func testBlockedCampaign(t *testing.T, h Harness, e Election) {
	leader := candidates(t, h, 1)[0]
	name := electionName()
	l, err := leader.Campaign(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(context.Background())
	pc, cut := e.Partitioned(t)
	t.Cleanup(func() { _ = pc.Close() }) // cut off, it cannot deregister
	waiter := candidate(t, h, pc)
	results := make(chan won, 1)
	go campaign(context.Background(), 0, waiter, name, results)
	time.Sleep(200 * time.Millisecond)
	cut()
	select {
	case r := <-results:
		if r.err == nil {
			t.Fatal("a campaign cut off from its server won")
		}
		if !errors.Is(r.err, cluster.ErrSessionLost) {
			t.Errorf("the cut-off campaign's error: %v, want one wrapping ErrSessionLost", r.err)
		}
	case <-time.After(e.TakeoverWithin + 5*time.Second):
		t.Fatalf("a campaign cut off from its server still waits %s later", e.TakeoverWithin+5*time.Second)
	}
}

// testElectionRestart: two candidates keep campaigning while the server is
// killed and restarted. Their holding intervals, [won, Done), must never
// overlap, and someone must lead again after the restart.
func testElectionRestart(t *testing.T, h Harness) {
	target := h.Recovery(t)
	if target.Register != nil {
		h.Register = target.Register
	}
	name := electionName()
	var mu sync.Mutex
	type interval struct {
		who        int
		from, to   time.Time
		term       uint64
		terminated bool
	}
	var held []interval
	stop, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var cands []contender
	for i := range 2 {
		c := target.NewCoordinator(t)
		// Close right after a restart may not deregister in time (a Consul
		// agent blocks writes until its first sync after the restart, about
		// 10 s; RecoversFromServerRestart covers registrations): logged,
		// not failed.
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Logf("Close after the restart: %v", err)
			}
		})
		cand := candidate(t, h, c)
		cands = append(cands, cand)
		wg.Go(func() {
			for stop.Err() == nil {
				l, err := cand.Campaign(stop, name)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				mu.Lock()
				held = append(held, interval{who: i, from: time.Now(), term: l.Term()})
				k := len(held) - 1
				mu.Unlock()
				select {
				case <-l.Done():
				case <-stop.Done():
					l.Resign(context.Background())
				}
				mu.Lock()
				held[k].to, held[k].terminated = time.Now(), true
				mu.Unlock()
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()
	clusterwait.WaitUntil(t, h.RecoverWithin, "a leader before the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(held) > 0
	})
	killed := time.Now()
	target.Kill()
	time.Sleep(3 * time.Second)
	target.Restart()
	restarted := time.Now()
	// Someone leads: a leader that won after the kill (its win may come
	// before Restart returns, once the server answers), or one whose
	// session outlived the outage (Consul's does, its TTL being longer).
	clusterwait.WaitUntil(t, h.RecoverWithin, "a leader again after the server's restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(held, func(i interval) bool { return !i.terminated })
	})
	mu.Lock()
	survived := !held[len(held)-1].from.After(killed)
	mu.Unlock()
	if survived {
		t.Log("the leader's session outlived the outage: it kept leading")
	}
	t.Logf("a leader again %s after the server answered", time.Since(restarted).Round(time.Millisecond))
	// The candidates' clients are connected and registered again before
	// the test ends.
	for _, c := range cands {
		clusterwait.WaitUntil(t, h.RecoverWithin, "the candidates registered again after the restart", queryHas(c.Coordinator, c.Node))
	}
	cancel()
	wg.Wait()
	for i, a := range held {
		for _, b := range held[i+1:] {
			if a.from.Before(b.to) && b.from.Before(a.to) {
				t.Errorf("two leaders at once: candidate %d (term %d) held %s–%s and candidate %d (term %d) %s–%s",
					a.who, a.term, a.from.Format(time.StampMilli), a.to.Format(time.StampMilli), b.who, b.term, b.from.Format(time.StampMilli), b.to.Format(time.StampMilli))
			}
		}
		if i > 0 && a.term <= held[i-1].term {
			t.Errorf("term %d follows term %d", a.term, held[i-1].term)
		}
	}
}

// resignBound is how long Resign(context.Background()) may take with the
// server gone: cluster.ResignWait and the test's own scheduling.
const resignBound = time.Second

// testResignWhileDown: a leader whose server is killed resigns, as a
// program on its way out does (defer lead.Resign(context.Background())),
// and Resign returns within resignBound, both while the leadership still
// holds and once it is lost; after the restart the same coordinator wins a
// campaign again.
func testResignWhileDown(t *testing.T, h Harness) {
	target := h.Recovery(t)
	if target.Register != nil {
		h.Register = target.Register
	}
	a, b := target.NewCoordinator(t), target.NewCoordinator(t)
	for _, c := range []cluster.Coordinator{a, b} {
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Logf("Close after the restart: %v", err)
			}
		})
	}
	ca, cb := candidate(t, h, a), candidate(t, h, b)
	live, lost := electionName(), electionName()
	la, err := ca.Campaign(ctx(t), live)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := cb.Campaign(ctx(t), lost)
	if err != nil {
		t.Fatal(err)
	}
	target.Kill()

	// Still leading as far as the node knows: the release must reach the
	// server, which is not there.
	if la.Err() != nil {
		// An in-process server that stops gracefully can take longer than
		// the session's safe window; a killed process cannot.
		t.Logf("the leadership was lost while the server stopped (%v): only the lost case is tested", la.Err())
	}
	began := time.Now()
	err = resignWithin(t, la, 10*resignBound)
	if took := time.Since(began); took > resignBound {
		t.Errorf("Resign with the server down took %s, want at most %s", took.Round(time.Millisecond), resignBound)
	}
	t.Logf("Resign with the server down: %v after %s", err, time.Since(began).Round(time.Millisecond))
	if la.Err() == nil {
		t.Error("Err is nil after Resign")
	}

	// Lost: nothing to release, so no wait at all.
	select {
	case <-lb.Done():
	case <-time.After(h.RecoverWithin):
		t.Fatalf("the leadership's Done was still open %s into the outage", h.RecoverWithin)
	}
	began = time.Now()
	if err := resignWithin(t, lb, 10*resignBound); err != nil {
		t.Errorf("Resign of a leadership already lost (%v): %v, want nil", lb.Err(), err)
	}
	if took := time.Since(began); took > resignBound {
		t.Errorf("Resign of a lost leadership took %s, want at most %s", took.Round(time.Millisecond), resignBound)
	}
	if !errors.Is(lb.Err(), cluster.ErrSessionLost) {
		t.Errorf("Err of the lost leadership after Resign: %v, want its cause (ErrSessionLost) kept", lb.Err())
	}

	target.Restart()
	for i, cand := range []contender{ca, cb} {
		name := []string{live, lost}[i]
		var l *cluster.Leadership
		clusterwait.WaitUntil(t, h.RecoverWithin, "a campaign won again after the restart", func() bool {
			cctx, cancel := context.WithTimeout(context.Background(), h.RecoverWithin)
			defer cancel()
			var err error
			if l, err = cand.Campaign(cctx, name); err != nil {
				t.Logf("campaign after the restart: %v", err)
				return false
			}
			return true
		})
		if err := l.Resign(context.Background()); err != nil {
			t.Errorf("Resign after the restart: %v", err)
		}
	}
}

// resignWithin calls l.Resign(context.Background()) and fails the test if
// it has not returned within d, rather than hang until the package's limit.
func resignWithin(t *testing.T, l *cluster.Leadership, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- l.Resign(context.Background()) }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Resign(context.Background()) had not returned after %s", d)
		return nil
	}
}
