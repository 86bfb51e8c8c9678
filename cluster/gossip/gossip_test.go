package gossip_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/clustertest"
	"github.com/herd-go/herd/cluster/gossip"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConfig is a member on loopback, on a free port, in a cluster named
// for the test alone, joining seeds.
func testConfig(clusterName, seeds string) gossip.Config {
	cfg := gossip.DefaultConfig()
	cfg.BindAddr, cfg.BindPort = "127.0.0.1", 0
	cfg.Profile = "local"
	cfg.ClusterName = clusterName
	cfg.Seeds = seeds
	cfg.RejoinInterval = time.Second
	return cfg
}

func newCoordinator(t testing.TB, cfg gossip.Config) *gossip.Coordinator {
	t.Helper()
	c, err := gossip.New(context.Background(), cfg, cluster.WithLogger(quiet), cluster.WithBackoff(cluster.Backoff{Max: 200 * time.Millisecond}))
	if err != nil {
		t.Fatalf("gossip.New: %v", err)
	}
	return c
}

// seed starts an observer member (never registered, so never listed) for
// the others to join, closed when the test ends.
func seed(t *testing.T) (clusterName, addr string) {
	t.Helper()
	clusterName = "t" + cluster.NewID()[:10]
	s := newCoordinator(t, testConfig(clusterName, ""))
	t.Cleanup(func() { s.Close() })
	return clusterName, s.Addr()
}

// rawMember joins the cluster as a plain memberlist member whose metadata
// is meta, as another program sharing the cluster would.
func rawMember(t *testing.T, clusterName, seedAddr string, meta []byte) {
	t.Helper()
	mc := memberlist.DefaultLocalConfig()
	mc.Name = "raw-" + cluster.NewID()
	mc.BindAddr, mc.BindPort, mc.AdvertisePort = "127.0.0.1", 0, 0
	mc.Label = clusterName
	mc.Delegate = metaOnly(meta)
	mc.LogOutput = io.Discard
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	if _, err := ml.Join([]string{seedAddr}); err != nil {
		t.Fatal(err)
	}
}

type metaOnly []byte

func (m metaOnly) NodeMeta(int) []byte                  { return m }
func (metaOnly) NotifyMsg([]byte)                       {}
func (metaOnly) GetBroadcasts(int, int) [][]byte        { return nil }
func (metaOnly) LocalState(bool) []byte                 { return nil }
func (metaOnly) MergeRemoteState(buf []byte, join bool) {}

func TestConformance(t *testing.T) {
	leakcheck.Register(t)
	name, addr := seed(t)
	cfg := testConfig(name, addr)
	clustertest.Run(t, clustertest.Harness{
		NewCoordinator: func(t *testing.T) cluster.Coordinator { return newCoordinator(t, cfg) },
		WriteMalformed: func(t *testing.T) {
			rawMember(t, name, addr, []byte("{not json"))
			rawMember(t, name, addr, []byte(`{"node":{"id":"x","host":"0.0.0.0","port":1}}`))
		},
		Malformed: func(c cluster.Coordinator) uint64 { return c.(*gossip.Coordinator).Stats().Malformed },
		// Gossip reaches every member with high probability within a few
		// rounds (100ms each in the local profile), not with certainty: the
		// suite's dozens of coordinators that left stay gossip targets for
		// a while, and a member a broadcast missed hears it at the next
		// push/pull. docs/benchmarks.md has the measured spread.
		Within: 3 * time.Second,
		// Nothing out of band can delete members: each holds its own entry.
		// There is no server to restart, and a partition is not fenced.
		Election: &clustertest.Election{},
	})
}
