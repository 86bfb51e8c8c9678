package metrics_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herd-go/herd/inspect"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
	"github.com/herd-go/herd/internal/testsupport/testnode"
	"github.com/herd-go/herd/metrics"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/shard"
)

// TestMetricsAfterRealTraffic runs three nodes on a real etcd, sends real
// messages over gRPC and checks what the collector reports: the view, the
// per-peer counters, the receiving server's counters, and that a peer that
// leaves takes its series with it.
func TestMetricsAfterRealTraffic(t *testing.T) {
	leakcheck.Register(t)
	var received atomic.Int64
	nodes := testnode.Cluster(t, 3, testnode.Options{Handle: func(s *remote.Server) {
		_ = s.Handle("count", remote.HandlerFunc(func(context.Context, []byte) { received.Add(1) }))
	}})
	a := nodes[0]
	_, reg, c := register(t, inspect.Sources{Manager: a.Manager, Coordinator: a.Coord, Server: a.Server, Backend: "etcd"})
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("promlint: %v %+v", err, problems)
	}

	// 5 messages to each peer, 2 to self (in-process, not a peer series).
	snap := a.Manager.Snapshot()
	var peers []string
	for i := range snap.Len() {
		count := 5
		if snap.Node(i).Self {
			count = 2
		} else {
			peers = append(peers, snap.ID(i))
		}
		for range count {
			if err := snap.Client(i).Send(context.Background(), "count", []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	clusterwait.WaitUntil(t, 10*time.Second, "every message delivered", func() bool { return received.Load() == 12 })
	clusterwait.WaitUntil(t, 5*time.Second, "the clients to count what they sent", func() bool {
		return value(t, reg, "herd_peer_messages_sent_total", peers[0]) == 5 &&
			value(t, reg, "herd_peer_messages_sent_total", peers[1]) == 5
	})

	var want strings.Builder
	want.WriteString("# HELP herd_members Nodes in this node's view of the cluster, self included.\n# TYPE herd_members gauge\nherd_members 3\n")
	want.WriteString("# HELP herd_member_joins_total Nodes added to the view since the node started.\n# TYPE herd_member_joins_total counter\n")
	fmt.Fprintf(&want, "herd_member_joins_total %d\n", a.Manager.Stats().Joined)
	want.WriteString("# HELP herd_registered 1 while the backend's last answer listed this node, else 0.\n# TYPE herd_registered gauge\nherd_registered 1\n")
	want.WriteString("# HELP herd_membership_error 1 while the last refresh of the membership failed, else 0.\n# TYPE herd_membership_error gauge\nherd_membership_error 0\n")
	want.WriteString("# HELP herd_backend_reregistrations_total Times this node was registered again after the backend lost it.\n# TYPE herd_backend_reregistrations_total counter\nherd_backend_reregistrations_total 0\n")
	want.WriteString("# HELP herd_server_messages_delivered_total Messages handed to a handler on this node, from peers or self.\n# TYPE herd_server_messages_delivered_total counter\nherd_server_messages_delivered_total 2\n")
	want.WriteString("# HELP herd_peer_messages_sent_total Messages written to a peer's stream.\n# TYPE herd_peer_messages_sent_total counter\n")
	for _, p := range slices.Sorted(slices.Values(peers)) {
		fmt.Fprintf(&want, "herd_peer_messages_sent_total{peer=%q} 5\n", p)
	}
	want.WriteString("# HELP herd_peer_up 1 while the client for a peer has no connection error, else 0.\n# TYPE herd_peer_up gauge\n")
	for _, p := range slices.Sorted(slices.Values(peers)) {
		fmt.Fprintf(&want, "herd_peer_up{peer=%q} 1\n", p)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want.String()), "herd_members", "herd_member_joins_total", "herd_registered", "herd_membership_error", "herd_backend_reregistrations_total",
		"herd_server_messages_delivered_total", "herd_peer_messages_sent_total", "herd_peer_up"); err != nil {
		t.Fatal(err)
	}
	if a.Manager.Stats().Joined < 2 {
		t.Fatalf("joins %d, want at least the two peers", a.Manager.Stats().Joined)
	}
	if v := value(t, reg, "herd_membership_last_answer_timestamp_seconds", ""); v < float64(time.Now().Add(-time.Minute).Unix()) || v > float64(time.Now().Unix()+1) {
		t.Fatalf("last answer timestamp %v, want a Unix time within the last minute", v)
	}

	// A peer that leaves: the view shrinks, a leave is counted, its series go.
	gone := nodes[2]
	gone.Stop()
	clusterwait.WaitUntil(t, 10*time.Second, "the view to drop the stopped node", func() bool { return a.Manager.Snapshot().Len() == 2 })
	if n := testutil.CollectAndCount(c, "herd_peer_messages_sent_total"); n != 1 {
		t.Fatalf("%d herd_peer_messages_sent_total series after a peer left, want 1", n)
	}
	if v := value(t, reg, "herd_member_leaves_total", ""); v != 1 {
		t.Fatalf("herd_member_leaves_total = %v, want 1", v)
	}
	if v := value(t, reg, "herd_members", ""); v != 2 {
		t.Fatalf("herd_members = %v, want 2", v)
	}
}

// register registers a collector over an inspector of src on a new
// pedantic registry; the test's cleanup closes the inspector.
func register(t *testing.T, src inspect.Sources) (*inspect.Inspector, *prometheus.Registry, *metrics.Collector) {
	t.Helper()
	in, err := inspect.New(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	reg := prometheus.NewPedanticRegistry()
	c, err := metrics.Register(reg, in)
	if err != nil {
		t.Fatal(err)
	}
	return in, reg, c
}

func TestRegisterRefusesNil(t *testing.T) {
	if _, err := metrics.Register(nil, nil); err == nil {
		t.Fatal("Register(nil, nil) returned no error")
	}
}

// value returns a series' value: the one whose peer label is peer, or the
// unlabelled one for "". It fails the test if there is none.
func value(t *testing.T, reg *prometheus.Registry, name, peer string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			label := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "peer" {
					label = l.GetValue()
				}
			}
			if label != peer {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s{peer=%q}", name, peer)
	return 0
}

// TestLeaderAndSlotMetrics: a node that leads an election and a slot group
// says so, with its slots, on a real etcd.
func TestLeaderAndSlotMetrics(t *testing.T) {
	leakcheck.Register(t)
	n := testnode.Cluster(t, 1, testnode.Options{})[0]
	g, err := shard.Join(n.Coord, n.Self.ID, shard.WithName("work"), shard.WithSlots(8), shard.WithRebalanceDelay(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	l, err := n.Coord.Campaign(context.Background(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(context.Background())
	in, _, c := register(t, inspect.Sources{Manager: n.Manager, Coordinator: n.Coord, Elections: []string{"jobs"}, Groups: map[string]*shard.Group{"work": g}})
	clusterwait.WaitUntil(t, 10*time.Second, "the node to own all 8 slots and lead jobs", func() bool {
		return g.Owned().Len() == 8 && len(in.Report().Elections) == 1 && in.Report().Elections[0].Self
	})
	epoch := g.Table().Epoch
	want := fmt.Sprintf(`# HELP herd_election_leader 1 while this node leads the election, else 0.
# TYPE herd_election_leader gauge
herd_election_leader{election="jobs"} 1
# HELP herd_election_term Fencing term of the election's current leader; 0 while nobody leads.
# TYPE herd_election_term gauge
herd_election_term{election="jobs"} %d
# HELP herd_shard_leader 1 while this node leads the slot group, else 0.
# TYPE herd_shard_leader gauge
herd_shard_leader{group="work"} 1
# HELP herd_shard_slots Slots of the group.
# TYPE herd_shard_slots gauge
herd_shard_slots{group="work"} 8
# HELP herd_shard_slots_owned Slots of the group this node owns.
# TYPE herd_shard_slots_owned gauge
herd_shard_slots_owned{group="work"} 8
# HELP herd_shard_slots_unowned Slots of the group that nobody owns in the table as this node read it (moving).
# TYPE herd_shard_slots_unowned gauge
herd_shard_slots_unowned{group="work"} 0
# HELP herd_shard_table_epoch Epoch of the group's slot table as this node last read it.
# TYPE herd_shard_table_epoch gauge
herd_shard_table_epoch{group="work"} %d
`, l.Term(), epoch)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "herd_election_leader", "herd_election_term", "herd_shard_leader",
		"herd_shard_slots", "herd_shard_slots_owned", "herd_shard_slots_unowned", "herd_shard_table_epoch"); err != nil {
		t.Fatal(err)
	}
}
