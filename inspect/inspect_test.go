package inspect_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/inspect"
	"github.com/herd-go/herd/internal/embedetcd"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
	"github.com/herd-go/herd/internal/testsupport/testnode"
	"github.com/herd-go/herd/shard"
)

// TestReportFollowsElectionsAndGroups: on a real etcd, a report names the
// leader of an election (and whether it is self) and, for a slot group,
// the table's shares, the slots owned here and whether this node leads.
func TestReportFollowsElectionsAndGroups(t *testing.T) {
	leakcheck.Register(t)
	nodes := testnode.Cluster(t, 2, testnode.Options{})
	a, b := nodes[0], nodes[1]
	groups := map[string]*shard.Group{}
	for _, n := range nodes {
		g, err := shard.Join(n.Coord, n.Self.ID, shard.WithName("work"), shard.WithSlots(16), shard.WithRebalanceDelay(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		groups[n.Self.ID] = g
	}
	in, err := inspect.New(inspect.Sources{Manager: a.Manager, Coordinator: a.Coord, Elections: []string{"jobs", "jobs"},
		Groups: map[string]*shard.Group{"work": groups[a.Self.ID]}})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()

	l, err := b.Coord.Campaign(context.Background(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitUntil(t, 10*time.Second, "the report to name b as leader of jobs", func() bool {
		r := in.Report()
		return len(r.Elections) == 1 && r.Elections[0].Leader == b.Self.ID && !r.Elections[0].Self && r.Elections[0].Term == l.Term()
	})
	if err := l.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err = a.Coord.Campaign(context.Background(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(context.Background())
	clusterwait.WaitUntil(t, 10*time.Second, "the report to say self leads jobs", func() bool {
		r := in.Report()
		return r.Elections[0].Leader == a.Self.ID && r.Elections[0].Self
	})

	clusterwait.WaitUntil(t, 10*time.Second, "a balanced table of 16 slots", func() bool {
		g := in.Report().Groups
		return len(g) == 1 && g[0].Shares[a.Self.ID] == 8 && g[0].Shares[b.Self.ID] == 8 && g[0].Owned == 8
	})
	_, aLeads := groups[a.Self.ID].Leading()
	if g := in.Report().Groups[0]; g.Name != "work" || g.Slots != 16 || g.Epoch == 0 || g.Leading != aLeads {
		t.Fatalf("group report %+v (a leads: %v)", g, aLeads)
	}
}

func TestNewRefusesBadSources(t *testing.T) {
	leakcheck.Register(t)
	if _, err := inspect.New(inspect.Sources{}); err == nil || !strings.Contains(err.Error(), "Manager") {
		t.Errorf("no Manager: err = %v", err)
	}
	nodes := testnode.Cluster(t, 1, testnode.Options{})
	bare, err := inspect.New(inspect.Sources{Manager: nodes[0].Manager}) // no coordinator, no elections: fine
	if err != nil {
		t.Fatalf("a Manager alone: %v", err)
	}
	if r := bare.Report(); r.BackendStats != nil || r.Server != nil || len(r.View.Members) != 1 || !r.View.Members[0].Healthy() {
		t.Errorf("a report from a Manager alone: %+v", r)
	}
	bare.Close()
	if (inspect.Member{Error: "connection refused"}).Healthy() {
		t.Error("a member with a connection error is healthy")
	}
	if _, err := inspect.New(inspect.Sources{Manager: nodes[0].Manager, Elections: []string{"jobs"}}); err == nil || !strings.Contains(err.Error(), "needs the Coordinator") {
		t.Errorf("elections without a coordinator: err = %v", err)
	}
	if _, err := inspect.New(inspect.Sources{Manager: nodes[0].Manager, Coordinator: nodes[0].Coord, Elections: []string{"no/slashes"}}); err == nil {
		t.Error("a bad election name was accepted")
	}
}

// TestReportFollowsTheNodesOwnKnowledgeInAnOutage: with the backend gone,
// the report stops showing this node as leader within a second of its
// leadership's Done closing, says the registration is unknown once the
// backend has not answered for StaleAfter, and gives the reason a slot
// group owns nothing once it has given its slots up.
func TestReportFollowsTheNodesOwnKnowledgeInAnOutage(t *testing.T) {
	srv, err := embedetcd.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	n := testnode.Start(t, srv.Endpoint(), testnode.Options{})
	g, err := shard.Join(n.Coord, n.Self.ID, shard.WithName("work"), shard.WithSlots(16), shard.WithOwnershipTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	in, err := inspect.New(inspect.Sources{Manager: n.Manager, Coordinator: n.Coord, Elections: []string{"jobs"},
		Groups: map[string]*shard.Group{"work": g}, StaleAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	l, err := n.Coord.Campaign(context.Background(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(context.Background())
	clusterwait.WaitUntil(t, 10*time.Second, "the report to say self leads jobs and owns every slot, registered", func() bool {
		r := in.Report()
		return len(r.Elections) == 1 && r.Elections[0].Self && len(r.Groups) == 1 && r.Groups[0].Owned == 16 &&
			r.Groups[0].Reason == "" && r.Membership.Registration == inspect.Registered
	})
	// The report says self leads by the node's own knowledge as soon as
	// Campaign returns; the note below needs the backend's word too, which
	// the inspector's observation gets from the server a moment later. Wait
	// for it through an observation of the same coordinator, served by the
	// same watch, so the outage does not begin before it arrives.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clusterwait.WaitLeader(t, n.Coord.Observe(ctx, "jobs"), 10*time.Second, "the backend to name self the leader", func(l cluster.Leader) bool { return l.ID == n.Self.ID })
	time.Sleep(100 * time.Millisecond) // the inspector's observer reads the same event

	srv.Stop()
	select {
	case <-l.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the leadership held 15s into the outage")
	}
	lost := time.Now()
	clusterwait.WaitUntil(t, time.Second, "the report to stop saying self leads", func() bool {
		e := in.Report().Elections[0]
		return !e.Self && e.Note != ""
	})
	t.Logf("the report showed the loss %s after Done closed", time.Since(lost).Round(time.Millisecond))
	clusterwait.WaitUntil(t, 10*time.Second, "the registration reported unknown", func() bool {
		return in.Report().Membership.Registration == inspect.Unknown
	})
	clusterwait.WaitUntil(t, 10*time.Second, "the group's reason for owning nothing", func() bool {
		gr := in.Report().Groups[0]
		return gr.Owned == 0 && strings.Contains(gr.Reason, "given up")
	})
	t.Logf("group: %s", in.Report().Groups[0].Reason)
}
