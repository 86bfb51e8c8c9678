package gossip_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/clustertest"
	"github.com/herd-go/herd/cluster/gossip"
	"github.com/herd-go/herd/internal/leakcheck"
	"github.com/herd-go/herd/internal/members"
)

// registered starts a coordinator from cfg and registers a fresh node.
func registered(t *testing.T, cfg gossip.Config) (*gossip.Coordinator, cluster.Node) {
	t.Helper()
	c := newCoordinator(t, cfg)
	t.Cleanup(func() { c.Close() })
	n := clustertest.NewNode()
	if err := c.RegisterRemote(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	return c, n
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
		if members.Has(ns, id) {
			t.Fatalf("%s: the view %v shows %s", what, clustertest.IDs(ns), id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sees(t *testing.T, c *gossip.Coordinator, id string, what string) {
	t.Helper()
	clustertest.WaitUntil(t, 5*time.Second, what, func() bool {
		ns, err := c.QueryRemoteNodes(context.Background())
		return err == nil && members.Has(ns, id)
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
	_, nc := registered(t, wrong)
	plain := testConfig(name, a.Addr())
	_, nd := registered(t, plain)
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
	_, nb := registered(t, testConfig("t"+cluster.NewID()[:10], a.Addr()))
	neverSees(t, a, nb.ID, "a member of another cluster seeded with this one's address")
}

// TestJoinsASeedThatStartsLater: a node started before its seed keeps
// trying and joins it once it listens.
func TestJoinsASeedThatStartsLater(t *testing.T) {
	leakcheck.Register(t)
	name := "t" + cluster.NewID()[:10]
	port := freePort(t)
	seedAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	early, _ := registered(t, testConfig(name, seedAddr))
	time.Sleep(500 * time.Millisecond) // a few failed attempts
	cfg := testConfig(name, "")
	cfg.BindPort = port
	_, ns := registered(t, cfg)
	sees(t, early, ns.ID, "the seed that started later")
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
	n := clustertest.NewNode()
	n.Meta = map[string]string{"blob": strings.Repeat("x", 600)}
	err := c.RegisterRemote(context.Background(), n)
	if err == nil || !strings.Contains(err.Error(), "at most 512") {
		t.Fatalf("RegisterRemote with a 600-byte metadata value: %v; want a refusal naming the 512-byte limit", err)
	}
}

func TestSecondRegistrationIsRefused(t *testing.T) {
	c, n := registered(t, testConfig("t"+cluster.NewID()[:10], ""))
	err := c.RegisterRemote(context.Background(), clustertest.NewNode())
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
	clustertest.WaitUntil(t, 2*time.Second, "the write on the other member", func() bool {
		data, got, err := b.GetRecord(context.Background(), "table")
		return err == nil && got == v && string(data) == "one"
	})
	if _, err := b.PutRecord(context.Background(), "table", []byte("stale"), ""); !errors.Is(err, cluster.ErrVersionConflict) {
		t.Fatalf("creating over a replicated record: %v, want ErrVersionConflict", err)
	}
	if _, err := b.PutRecord(context.Background(), "table", []byte("two"), v); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitUntil(t, 2*time.Second, "the second write back on the first member", func() bool {
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
		if err := a.RegisterRemote(context.Background(), clustertest.NewNode()); err != nil {
			t.Fatal(err)
		}
		nb := clustertest.NewNode()
		if err := b.RegisterRemote(context.Background(), nb); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Second)
		for {
			ns, _ := a.QueryRemoteNodes(context.Background())
			if members.Has(ns, nb.ID) {
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
		clustertest.WaitUntil(t, 5*time.Second, "every candidate in every view", func() bool {
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
		clustertest.WaitUntil(t, 5*time.Second, "both candidates in both views", func() bool {
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
	clustertest.WaitLeader(t, leader.Observe(ctx, "dropped"), 5*time.Second, "the resigned leader observes its successor", func(l cluster.Leader) bool {
		return l.ID == nextNode.ID
	})
}
