package gossip_test

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/cluster/gossip"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
)

// registered starts a coordinator from cfg and registers a fresh node.
func registered(t *testing.T, cfg gossip.Config) (*gossip.Coordinator, cluster.Node) {
	t.Helper()
	c := newCoordinator(t, cfg)
	t.Cleanup(func() { c.Close() })
	n := clusterwait.NewNode()
	if err := c.RegisterRemote(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	return c, n
}

// shutOut starts a coordinator from cfg whose seeds do not let it in, and
// checks that it refuses to register a fresh node, saying that no seed
// answered, rather than register it in a cluster of its own.
func shutOut(t *testing.T, cfg gossip.Config) cluster.Node {
	t.Helper()
	c := newCoordinator(t, cfg)
	t.Cleanup(func() { c.Close() })
	n := clusterwait.NewNode()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.RegisterRemote(ctx, n); err == nil || !strings.Contains(err.Error(), "no seed answered") {
		t.Fatalf("RegisterRemote with seeds that shut it out: %v, want an error saying no seed answered", err)
	}
	return n
}

// neverSees checks that c's view does not show id for a while.
func neverSees(t *testing.T, c *gossip.Coordinator, id string, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		ns, err := c.QueryRemoteNodes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if backend.Has(ns, id) {
			t.Fatalf("%s: the view %v shows %s", what, clusterwait.IDs(ns), id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sees(t *testing.T, c *gossip.Coordinator, id string, what string) {
	t.Helper()
	clusterwait.WaitUntil(t, 5*time.Second, what, func() bool {
		ns, err := c.QueryRemoteNodes(context.Background())
		return err == nil && backend.Has(ns, id)
	})
}

func TestEncryptedClusterKeepsOthersOut(t *testing.T) {
	leakcheck.Register(t)
	name := "t" + cluster.NewID()[:10]
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	other := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210"))
	cfg := testConfig(name, "")
	cfg.Keys = key
	a, _ := registered(t, cfg)
	cfg.Seeds = a.Addr()
	_, nb := registered(t, cfg)
	sees(t, a, nb.ID, "a member with the key")

	wrong := testConfig(name, a.Addr())
	wrong.Keys = other
	nc := shutOut(t, wrong)
	plain := testConfig(name, a.Addr())
	nd := shutOut(t, plain)
	neverSees(t, a, nc.ID, "a member with another key")
	neverSees(t, a, nd.ID, "a member without encryption")
}

func TestKeyRotationKeepsTheClusterWhole(t *testing.T) {
	leakcheck.Register(t)
	name := "t" + cluster.NewID()[:10]
	oldKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	newKey := base64.StdEncoding.EncodeToString([]byte("abcdef0123456789"))
	cfg := testConfig(name, "")
	cfg.Keys = oldKey + "," + newKey // step 1: the new key accepted
	a, _ := registered(t, cfg)
	rotated := testConfig(name, a.Addr())
	rotated.Keys = newKey + "," + oldKey // step 2: the new key used
	_, nb := registered(t, rotated)
	sees(t, a, nb.ID, "a member that already encrypts with the new key")
}

func TestClusterNamesKeepClustersApart(t *testing.T) {
	leakcheck.Register(t)
	a, _ := registered(t, testConfig("t"+cluster.NewID()[:10], ""))
	nb := shutOut(t, testConfig("t"+cluster.NewID()[:10], a.Addr()))
	neverSees(t, a, nb.ID, "a member of another cluster seeded with this one's address")
}

// TestJoinsASeedThatStartsLater: a node started before its seed keeps
// trying and joins it once it listens; its registration waits for that.
func TestJoinsASeedThatStartsLater(t *testing.T) {
	leakcheck.Register(t)
	name := "t" + cluster.NewID()[:10]
	port := freePort(t)
	seedAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	early := newCoordinator(t, testConfig(name, seedAddr))
	t.Cleanup(func() { early.Close() })
	registeredEarly := make(chan error, 1)
	go func() { registeredEarly <- early.RegisterRemote(context.Background(), clusterwait.NewNode()) }()
	time.Sleep(500 * time.Millisecond) // a few failed attempts
	select {
	case err := <-registeredEarly:
		t.Fatalf("RegisterRemote returned (%v) before any seed had answered", err)
	default:
	}
	cfg := testConfig(name, "")
	cfg.BindPort = port
	_, ns := registered(t, cfg)
	if err := <-registeredEarly; err != nil {
		t.Fatalf("RegisterRemote once the seed answered: %v", err)
	}
	sees(t, early, ns.ID, "the seed that started later")
}

// TestRegistrationWithNoSeedAnsweringSaysSo: with every seed down,
// RegisterRemote does not guess that the ID is free: within its bound it
// fails, naming the setting, and registers nothing.
func TestRegistrationWithNoSeedAnsweringSaysSo(t *testing.T) {
	leakcheck.Register(t)
	dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	c := newCoordinator(t, testConfig("t"+cluster.NewID()[:10], dead))
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	began := time.Now()
	err := c.RegisterRemote(ctx, clusterwait.NewNode())
	if err == nil || !strings.Contains(err.Error(), "SW_CLUSTER_GOSSIP_SEEDS") || !strings.Contains(err.Error(), dead) {
		t.Fatalf("RegisterRemote with no seed answering: %v, want an error naming SW_CLUSTER_GOSSIP_SEEDS and %s", err, dead)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("RegisterRemote took %s with a 1s context", took)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("the error spans lines: %q", err)
	}
	ns, qerr := c.QueryRemoteNodes(context.Background())
	if qerr != nil || len(ns) != 0 {
		t.Errorf("after the refusal the view is %v (%v), want empty", clusterwait.IDs(ns), qerr)
	}
}

// TestSimultaneousRegistrationsOfOneIDLeaveOneHolder: two processes
// register one ID at the same moment, each before the other's entry could
// reach it. Once both entries have met, exactly one keeps the ID; the
// other has been refused, or withdraws and says so on Err, in its Stats,
// and by ending its leadership.
func TestSimultaneousRegistrationsOfOneIDLeaveOneHolder(t *testing.T) {
	leakcheck.Register(t)
	name, seedAddr := seed(t)
	for round := range 5 {
		a, b := newCoordinator(t, testConfig(name, seedAddr)), newCoordinator(t, testConfig(name, seedAddr))
		na := clusterwait.NewNode()
		nb := na
		nb.Address = clusterwait.NewNode().Address
		errs := make(chan error, 2)
		go func() { errs <- a.RegisterRemote(context.Background(), na) }()
		go func() { errs <- b.RegisterRemote(context.Background(), nb) }()
		e1, e2 := <-errs, <-errs
		refused := 0
		for _, err := range []error{e1, e2} {
			if err != nil {
				if !errors.Is(err, cluster.ErrDuplicateID) {
					t.Fatalf("round %d: %v, want nil or an error wrapping ErrDuplicateID", round, err)
				}
				refused++
			}
		}
		if refused == 2 {
			t.Fatalf("round %d: both registrations were refused; one should keep the ID", round)
		}
		holders := func() int {
			n := 0
			for _, c := range []*gossip.Coordinator{a, b} {
				if c.Err() == nil {
					if _, err := c.QueryRemoteNodes(context.Background()); err == nil {
						n++
					}
				}
			}
			return n
		}
		if refused == 0 {
			clusterwait.WaitUntil(t, 5*time.Second, "one of the two withdrawn", func() bool { return holders() == 1 })
			withdrawn := a
			if a.Err() == nil {
				withdrawn = b
			}
			if !errors.Is(withdrawn.Err(), cluster.ErrDuplicateID) || withdrawn.Stats().DuplicateIDs != 1 {
				t.Errorf("round %d: the withdrawn side's Err %v and DuplicateIDs %d", round, withdrawn.Err(), withdrawn.Stats().DuplicateIDs)
			}
		}
		a.Close()
		b.Close()
	}
}

// TestClashFoundAtHealLeavesOneLeader: the two sides of a partition each
// register one ID and elect it; when the partition heals, one side
// withdraws: its leadership ends with ErrDuplicateID, Err says why, and
// the election has one leader.
func TestClashFoundAtHealLeavesOneLeader(t *testing.T) {
	leakcheck.Register(t)
	name, seedAddr := seed(t)
	var cs []*gossip.Coordinator
	var cuts []*cuttable
	for range 2 {
		tr, port := newCuttable(t)
		cfg := testConfig(name, seedAddr)
		cfg.BindPort, cfg.Transport = port, tr
		c := newCoordinator(t, cfg)
		t.Cleanup(func() { c.Close() })
		cs, cuts = append(cs, c), append(cuts, tr)
	}
	observer, _ := registered(t, testConfig(name, seedAddr))
	for _, c := range cs {
		clusterwait.WaitUntil(t, 5*time.Second, "the observer in every view", func() bool {
			ns, _ := c.QueryRemoteNodes(context.Background())
			return len(ns) == 1
		})
	}
	cuts[1].cut.Store(true)
	// Each side gives the other up (SWIM's detection), then registers.
	clusterwait.WaitUntil(t, 30*time.Second, "each side of the cut giving the other up", func() bool {
		return cs[1].NumMembers() == 1 && cs[0].NumMembers() == 3
	})
	n := clusterwait.NewNode()
	twin := n
	twin.Address = clusterwait.NewNode().Address
	if err := cs[0].RegisterRemote(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	if err := cs[1].RegisterRemote(context.Background(), twin); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var leads []*cluster.Leadership
	for _, c := range cs {
		l, err := c.Campaign(ctx, "clash")
		if err != nil {
			t.Fatal(err)
		}
		leads = append(leads, l)
	}
	cuts[1].cut.Store(false)
	var lost int
	select {
	case <-leads[0].Done():
		lost = 0
	case <-leads[1].Done():
		lost = 1
	case <-time.After(30 * time.Second):
		t.Fatal("both sides still lead under one ID 30s after the heal")
	}
	kept := 1 - lost
	if !errors.Is(leads[lost].Err(), cluster.ErrDuplicateID) {
		t.Errorf("the withdrawn side's leadership ended with %v, want ErrDuplicateID", leads[lost].Err())
	}
	if !errors.Is(cs[lost].Err(), cluster.ErrDuplicateID) || cs[lost].Stats().DuplicateIDs != 1 {
		t.Errorf("the withdrawn side: Err %v, DuplicateIDs %d", cs[lost].Err(), cs[lost].Stats().DuplicateIDs)
	}
	if _, err := cs[lost].QueryRemoteNodes(context.Background()); !errors.Is(err, cluster.ErrDuplicateID) {
		t.Errorf("QueryRemoteNodes on the withdrawn side: %v, want ErrDuplicateID", err)
	}
	if leads[kept].Err() != nil || cs[kept].Err() != nil {
		t.Fatalf("the side that keeps the ID lost it too: leadership %v, coordinator %v", leads[kept].Err(), cs[kept].Err())
	}
	want := []cluster.Address{n.Address, twin.Address}[kept]
	clusterwait.WaitUntil(t, 10*time.Second, "the ID at the keeper's address only, in the observer's view", func() bool {
		ns, _ := observer.QueryRemoteNodes(context.Background())
		for _, m := range ns {
			if m.ID == n.ID {
				return m.Address == want
			}
		}
		return false
	})
}

// freePort is a port that was free for both UDP and TCP a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

func TestOversizedEntryIsRefusedWithItsSize(t *testing.T) {
	c := newCoordinator(t, testConfig("t"+cluster.NewID()[:10], ""))
	defer c.Close()
	n := clusterwait.NewNode()
	n.Meta = map[string]string{"blob": strings.Repeat("x", 600)}
	err := c.RegisterRemote(context.Background(), n)
	if err == nil || !strings.Contains(err.Error(), "at most 512") {
		t.Fatalf("RegisterRemote with a 600-byte metadata value: %v; want a refusal naming the 512-byte limit", err)
	}
}

func TestSecondRegistrationIsRefused(t *testing.T) {
	c, n := registered(t, testConfig("t"+cluster.NewID()[:10], ""))
	err := c.RegisterRemote(context.Background(), clusterwait.NewNode())
	if err == nil || !strings.Contains(err.Error(), n.ID) {
		t.Fatalf("a second RegisterRemote: %v; want a refusal naming %s", err, n.ID)
	}
}

// TestRecordWrittenOnOneMemberIsReadOnAnother: records are replicated.
func TestRecordWrittenOnOneMemberIsReadOnAnother(t *testing.T) {
	leakcheck.Register(t)
	name := "t" + cluster.NewID()[:10]
	a, _ := registered(t, testConfig(name, ""))
	b, nb := registered(t, testConfig(name, a.Addr()))
	sees(t, a, nb.ID, "b")
	v, err := a.PutRecord(context.Background(), "table", []byte("one"), "")
	if err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitUntil(t, 2*time.Second, "the write on the other member", func() bool {
		data, got, err := b.GetRecord(context.Background(), "table")
		return err == nil && got == v && string(data) == "one"
	})
	if _, err := b.PutRecord(context.Background(), "table", []byte("stale"), ""); !errors.Is(err, cluster.ErrVersionConflict) {
		t.Fatalf("creating over a replicated record: %v, want ErrVersionConflict", err)
	}
	if _, err := b.PutRecord(context.Background(), "table", []byte("two"), v); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitUntil(t, 2*time.Second, "the second write back on the first member", func() bool {
		data, _, err := a.GetRecord(context.Background(), "table")
		return err == nil && string(data) == "two"
	})
}

// TestRegisteredWhileJoiningIsSeen: a node that registers while its first
// join is still in flight reaches the others at once, not at the next
// push/pull (memberlist does not reliably gossip an update made while a
// member knew nobody).
func TestRegisteredWhileJoiningIsSeen(t *testing.T) {
	leakcheck.Register(t)
	// One seed for all rounds: the members that left in earlier rounds are
	// still gossip targets, as in a cluster with churn.
	name, seedAddr := seed(t)
	for round := range 20 {
		a, b := newCoordinator(t, testConfig(name, seedAddr)), newCoordinator(t, testConfig(name, seedAddr))
		t.Cleanup(func() { a.Close(); b.Close() })
		if err := a.RegisterRemote(context.Background(), clusterwait.NewNode()); err != nil {
			t.Fatal(err)
		}
		nb := clusterwait.NewNode()
		if err := b.RegisterRemote(context.Background(), nb); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Second)
		for {
			ns, _ := a.QueryRemoteNodes(context.Background())
			if backend.Has(ns, nb.ID) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: a node that registered while joining was not seen within 1s", round)
			}
			time.Sleep(10 * time.Millisecond)
		}
		a.Close()
		b.Close()
	}
}

// TestLeaderCrashHandsOver: when the leader stops answering, SWIM declares
// it dead and the next candidate claims with a higher term. Unlike the
// server backends, nothing guarantees that the old leader knew first
// (unfenced; see Campaign).
func TestLeaderCrashHandsOver(t *testing.T) {
	leakcheck.Register(t)
	name, seedAddr := seed(t)
	var cs []*gossip.Coordinator
	for range 3 {
		c, _ := registered(t, testConfig(name, seedAddr))
		cs = append(cs, c)
	}
	for _, c := range cs[1:] {
		clusterwait.WaitUntil(t, 5*time.Second, "every candidate in every view", func() bool {
			ns, _ := c.QueryRemoteNodes(context.Background())
			return len(ns) == 3
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wins := campaignAll(ctx, cs, "crash")
	first := nextWin(t, wins, 30*time.Second, "the first leader")
	crashed := time.Now()
	cs[first.who].Crash()
	next := nextWin(t, wins, 30*time.Second, "a leader after the leader's crash")
	if next.lead.Term() <= first.lead.Term() {
		t.Errorf("the new leader's term %d is not above the crashed leader's %d", next.lead.Term(), first.lead.Term())
	}
	t.Logf("took over %v after the crash (term %d → %d)", time.Since(crashed).Round(time.Millisecond), first.lead.Term(), next.lead.Term())
}

// win is a campaign that won: whose, and its leadership.
type win struct {
	who  int
	lead *cluster.Leadership
}

// campaignAll campaigns for election name on each of cs; each win arrives
// on the channel returned, marked with its coordinator's index in cs.
func campaignAll(ctx context.Context, cs []*gossip.Coordinator, name string) <-chan win {
	wins := make(chan win, len(cs))
	for i, c := range cs {
		go func() {
			if l, err := c.Campaign(ctx, name); err == nil {
				wins <- win{i, l}
			}
		}()
	}
	return wins
}

// nextWin waits up to within for the next win (30s is several suspicion
// timeouts): an election that never settles fails here, saying what was
// awaited, not at the package's time limit.
func nextWin(t *testing.T, wins <-chan win, within time.Duration, what string) win {
	t.Helper()
	select {
	case w := <-wins:
		return w
	case <-time.After(within):
		t.Fatalf("%s: nobody won within %s", what, within)
		return win{}
	}
}

// TestAdvertisedAddressIsWhatOthersUse: bound to every interface, a member
// gives others the address it was told to advertise.
func TestAdvertisedAddressIsWhatOthersUse(t *testing.T) {
	leakcheck.Register(t)
	name := "t" + cluster.NewID()[:10]
	port := freePort(t)
	cfg := testConfig(name, "")
	cfg.BindAddr, cfg.BindPort = "0.0.0.0", port
	cfg.AdvertiseAddr, cfg.AdvertisePort = "127.0.0.1", port
	a, na := registered(t, cfg)
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(port)); a.Addr() != want {
		t.Fatalf("advertised %s, want %s", a.Addr(), want)
	}
	b, _ := registered(t, testConfig(name, a.Addr()))
	sees(t, b, na.ID, "the member at its advertised address")
}

// TestDroppedUpdateIsMadeAgain: memberlist drops an update of a member's
// entry when a refutation takes its incarnation first. A resignation
// carried by such an update must still reach the others: otherwise they
// see the resigned leader's claim for good, and nobody else ever claims
// the election.
func TestDroppedUpdateIsMadeAgain(t *testing.T) {
	leakcheck.Register(t)
	name, seedAddr := seed(t)
	leader, _ := registered(t, testConfig(name, seedAddr))
	next, nextNode := registered(t, testConfig(name, seedAddr))
	for _, c := range []*gossip.Coordinator{leader, next} {
		clusterwait.WaitUntil(t, 5*time.Second, "both candidates in both views", func() bool {
			ns, _ := c.QueryRemoteNodes(context.Background())
			return len(ns) == 2
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lead, err := leader.Campaign(ctx, "dropped")
	if err != nil {
		t.Fatal(err)
	}
	wins := campaignAll(ctx, []*gossip.Coordinator{next}, "dropped")
	leader.DropUpdates(1)
	if err := lead.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	w := nextWin(t, wins, 10*time.Second, "after a resignation whose first update memberlist dropped")
	if w.lead.Term() <= lead.Term() {
		t.Fatalf("the next leader's term %d is not above the resigned leader's %d", w.lead.Term(), lead.Term())
	}
	clusterwait.WaitLeader(t, leader.Observe(ctx, "dropped"), 5*time.Second, "the resigned leader observes its successor", func(l cluster.Leader) bool {
		return l.ID == nextNode.ID
	})
}

// TestMemberlistLogLinesKeepOnePrefix: memberlist's "[WARN] memberlist: …"
// becomes one warning with one prefix.
func TestMemberlistLogLinesKeepOnePrefix(t *testing.T) {
	var buf strings.Builder
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gossip.LogLine(l, "2026/12/07 19:00:00 [WARN] memberlist: Was able to connect to x over TCP but UDP probes failed\n")
	gossip.LogLine(l, "[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n")
	out := buf.String()
	if strings.Count(out, "memberlist:") != 2 || strings.Contains(out, "[WARN]") || !strings.Contains(out, "level=WARN msg=\"gossip: memberlist: Was able") || !strings.Contains(out, "level=DEBUG msg=\"gossip: memberlist: Stream") {
		t.Fatalf("log lines:\n%s", out)
	}
}
