package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/cluster/clustertest"
	"github.com/herd-go/herd/cluster/etcd"
	"github.com/herd-go/herd/internal/embedetcd"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/configcheck"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
	"github.com/herd-go/herd/internal/testsupport/testserver"
)

var server *embedetcd.Server

func TestMain(m *testing.M) {
	var err error
	server, err = embedetcd.Start("")
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the embedded etcd server:", err)
		os.Exit(1)
	}
	leakcheck.Settle() // the server starts its HTTP gateway's client after it is ready
	code := m.Run()
	server.Close()
	os.Exit(code)
}

// leakCheck fails the test if it leaves goroutines behind. The embedded
// servers' own goroutines, some started lazily, are not the test's.
func leakCheck(t *testing.T) {
	leakcheck.Register(t,
		goleak.IgnoreAnyFunction("go.etcd.io/etcd/server/v3/embed.(*serveCtx).startHandler.func1"),
		goleak.IgnoreAnyFunction("go.etcd.io/etcd/server/v3/etcdserver.(*EtcdServer).GoAttach.func1"),
	)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// endpoint is the embedded server, or an external etcd named by
// HERD_TEST_ETCD_ADDR (compose.yaml sets it).
func endpoint() string {
	if addr := os.Getenv("HERD_TEST_ETCD_ADDR"); addr != "" {
		return addr
	}
	return server.Endpoint()
}

func testConfig(t *testing.T) etcd.Config {
	cfg := etcd.DefaultConfig()
	cfg.Endpoints = endpoint()
	// Each test gets its own cluster so tests cannot see each other's nodes.
	cfg.Namespace = "/herd-test/" + strings.ReplaceAll(t.Name(), "/", "_")
	cfg.TTL = 5 * time.Second // leases survive a loaded machine's pauses
	cfg.ElectionTTL = electionTTL
	return cfg
}

// electionTTL is the tests' campaign lease: short, for quick crash takeovers.
const electionTTL = 3 * time.Second

func newCoordinator(t *testing.T, cfg etcd.Config) *etcd.Coordinator {
	t.Helper()
	c, err := etcd.New(context.Background(), cfg, cluster.WithLogger(quiet), cluster.WithBackoff(cluster.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}))
	if err != nil {
		t.Fatalf("etcd.New: %v", err)
	}
	return c
}

func rawClient(t *testing.T) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	leakCheck(t)
	cfg := testConfig(t)
	prefix := cfg.Namespace + "/" + cfg.ServiceName + "/" // where members' keys are
	clustertest.Run(t, clustertest.Harness{
		NewCoordinator: func(t *testing.T) cluster.Coordinator { return newCoordinator(t, cfg) },
		WriteMalformed: func(t *testing.T) {
			raw := rawClient(t)
			for k, v := range map[string]string{"garbage": "{not json", "wildcard": `{"id":"wildcard","host":"0.0.0.0","port":1}`, "mismatch": `{"id":"other","host":"127.0.0.1","port":1}`} {
				if _, err := raw.Put(context.Background(), prefix+k, v); err != nil {
					t.Fatal(err)
				}
			}
		},
		Malformed: func(c cluster.Coordinator) uint64 { return c.(*etcd.Coordinator).Stats().Malformed },
		Election: &clustertest.Election{
			Partitioned: func(t *testing.T) (cluster.Coordinator, func()) {
				proxy := testserver.StartProxy(t, endpoint())
				cut := cfg
				cut.Endpoints, cut.DialTimeout = proxy.Addr, time.Second
				return newCoordinator(t, cut), proxy.Partition
			},
			// The lease runs out ElectionTTL after the last renewal; the
			// waiting candidate's watch sees the key go at once.
			TakeoverWithin: electionTTL + time.Second,
		},
		PutForeign: func(t *testing.T, n cluster.Node) {
			v, err := backend.EncodeNode(n)
			if err != nil {
				t.Fatal(err)
			}
			raw, k := rawClient(t), prefix+n.ID
			if _, err := raw.Put(context.Background(), k, string(v)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = raw.Delete(context.Background(), k) })
		},
		DeleteForeign: func(t *testing.T, nodes []cluster.Node) {
			var deletes []clientv3.Op // one transaction: one revision, one watch event batch
			for _, n := range nodes {
				deletes = append(deletes, clientv3.OpDelete(prefix+n.ID))
			}
			if _, err := rawClient(t).Txn(context.Background()).Then(deletes...).Commit(); err != nil {
				t.Fatal(err)
			}
		},
		// An etcd process SIGKILLed and started again on the same data when
		// HERD_ETCD_BIN names a binary (scripts/test.sh builds one); else the
		// embedded server, stopped and started in-process.
		Recovery: func(t *testing.T) clustertest.RecoveryTarget {
			if bin := os.Getenv("HERD_ETCD_BIN"); bin != "" {
				srv := testserver.StartEtcd(t, bin)
				rcfg := cfg
				rcfg.Endpoints, rcfg.DialTimeout = srv.Endpoint, time.Second
				return clustertest.RecoveryTarget{
					NewCoordinator: func(t *testing.T) cluster.Coordinator { return newCoordinator(t, rcfg) },
					Kill:           srv.Kill,
					Restart:        srv.Start,
					RestartEmpty:   srv.StartEmpty,
				}
			}
			srv, err := embedetcd.Start(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			rcfg := cfg
			rcfg.Endpoints = srv.Endpoint()
			rcfg.DialTimeout = time.Second
			return clustertest.RecoveryTarget{
				NewCoordinator: func(t *testing.T) cluster.Coordinator { return newCoordinator(t, rcfg) },
				Kill:           srv.Stop,
				Restart: func() {
					if err := srv.Restart(); err != nil {
						t.Fatal(err)
					}
				},
			}
		},
		RecoverWithin: 15 * time.Second,
		ResumeWithin:  time.Second,
	})
}

func register(t *testing.T, c *etcd.Coordinator) cluster.Node {
	t.Helper()
	n := clusterwait.NewNode()
	if err := c.RegisterRemote(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReregistersAfterLeaseRevokedOutOfBand(t *testing.T) {
	leakCheck(t)
	cfg := testConfig(t)
	c := newCoordinator(t, cfg)
	defer c.Close()
	self := register(t, c)
	key := c.Prefix() + self.ID
	raw := rawClient(t)

	for round := 1; round <= 2; round++ {
		resp, err := raw.Get(context.Background(), key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("round %d: self key missing before revoke: %v", round, err)
		}
		if _, err := raw.Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
			t.Fatal(err)
		}
		waitKey(t, raw, key, 5*time.Second)
		// The key is visible a moment before the counter moves.
		deadline := time.Now().Add(5 * time.Second)
		for c.Stats().Reregistrations < uint64(round) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: Reregistrations = %d", round, c.Stats().Reregistrations)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Settled: the new lease is the one kept alive, so nothing more happens
	// (a supervisor that kept the stale lease alive would re-grant every
	// backoff, each time under a new lease).
	resp, err := raw.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("self key missing after re-registration: %v", err)
	}
	lease := resp.Kvs[0].Lease
	time.Sleep(cfg.TTL * 7 / 10) // more than two keepalive periods (TTL/3)
	if n := c.Stats().Reregistrations; n != 2 {
		t.Fatalf("Reregistrations = %d a while after two revocations, want 2: the supervisor keeps re-registering", n)
	}
	if resp, err := raw.Get(context.Background(), key); err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease != lease {
		t.Fatalf("self key moved to another lease or vanished after settling: %v %v", resp, err)
	}
	// Kept alive, its remaining TTL was refreshed within the last TTL/3;
	// left alone, less than 30% of it would remain by now.
	ttl, err := raw.TimeToLive(context.Background(), clientv3.LeaseID(lease))
	if err != nil || time.Duration(ttl.TTL)*time.Second < cfg.TTL/2 {
		t.Fatalf("the registered lease is not being kept alive: %d s of %s left, %v", ttl.TTL, cfg.TTL, err)
	}
}

// registeredWithKey registers a node through a new coordinator, closed when
// the test ends, and returns it, a client of the server and self's key.
func registeredWithKey(t *testing.T) (*etcd.Coordinator, *clientv3.Client, string) {
	t.Helper()
	leakCheck(t)
	c := newCoordinator(t, testConfig(t))
	t.Cleanup(func() { c.Close() })
	self := register(t, c)
	return c, rawClient(t), c.Prefix() + self.ID
}

// The watch can report the revoke of a lease after the supervisor has already
// re-granted and put the key again. That deletion is older than our put and
// must not cause another put or count as another re-registration (seen in CI:
// Reregistrations 3 after two revocations).
func TestIgnoresADeletionOurLatestPutRepaired(t *testing.T) {
	c, raw, key := registeredWithKey(t)
	resp, err := raw.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("self key missing: %v", err)
	}
	c.NudgeSelfGone(resp.Kvs[0].ModRevision)
	c.NudgeSelfGone(resp.Kvs[0].ModRevision - 1)
	time.Sleep(300 * time.Millisecond)
	if n := c.Stats().Reregistrations; n != 0 {
		t.Fatalf("Reregistrations = %d after deletions no newer than our put, want 0", n)
	}
	after, err := raw.Get(context.Background(), key)
	if err != nil || len(after.Kvs) != 1 || after.Kvs[0].ModRevision != resp.Kvs[0].ModRevision {
		t.Fatalf("self key was written again for a stale deletion: %v %v", after, err)
	}
	// A newer deletion is repaired on the same lease.
	c.NudgeSelfGone(resp.Header.Revision + 1)
	clusterwait.WaitUntil(t, 5*time.Second, "a re-put for a newer deletion", func() bool { return c.Stats().Reregistrations == 1 })
}

func TestReputsKeyDeletedOutOfBand(t *testing.T) {
	_, raw, key := registeredWithKey(t)
	if _, err := raw.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	waitKey(t, raw, key, 5*time.Second)
}

func waitKey(t *testing.T, raw *clientv3.Client, key string, d time.Duration) {
	t.Helper()
	clusterwait.WaitUntil(t, d, "key "+key+" registered again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := raw.Get(ctx, key)
		return err == nil && len(resp.Kvs) == 1
	})
}

// TestSurvivesServerRestart stops the real server, starts it again on the
// same data directory, and checks that registration and the watch recover.
func TestSurvivesServerRestart(t *testing.T) {
	leakCheck(t) // registered first, so it runs after the server below is closed
	srv, err := embedetcd.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	cfg := testConfig(t)
	cfg.Endpoints = srv.Endpoint()
	cfg.TTL = 3 * time.Second
	a := newCoordinator(t, cfg)
	defer a.Close()
	na := register(t, a)
	w := a.Watch(context.Background())
	clusterwait.WaitFor(t, w, time.Second, "self", func(ns []cluster.Node) bool { return clusterwait.Has(ns, na.ID) })

	srv.Stop()
	time.Sleep(500 * time.Millisecond)
	if _, err := a.QueryRemoteNodes(shortCtx(t)); err == nil {
		t.Fatal("query succeeded while the server was down")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}

	// The watch must deliver changes again: a new node joins after the restart.
	b := newCoordinator(t, cfg)
	nb := register(t, b)
	clusterwait.WaitFor(t, w, 10*time.Second, "a node that joined after the restart", func(ns []cluster.Node) bool {
		return clusterwait.Has(ns, na.ID) && clusterwait.Has(ns, nb.ID)
	})
	// And self is still registered once the lease would have expired.
	time.Sleep(cfg.TTL + time.Second)
	nodes, err := b.QueryRemoteNodes(shortCtx(t))
	if err != nil || !clusterwait.Has(nodes, na.ID) {
		t.Fatalf("after restart + TTL: view %v, err %v", clusterwait.IDs(nodes), err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitFor(t, w, time.Second, "b gone after Close", func(ns []cluster.Node) bool { return !clusterwait.Has(ns, nb.ID) })
}

func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUnreachableServerFailsFast(t *testing.T) {
	leakCheck(t)
	cfg := etcd.DefaultConfig()
	cfg.Endpoints = "127.0.0.1:1"
	cfg.DialTimeout = 300 * time.Millisecond
	configcheck.FailsFast(t, 5*time.Second, "SW_CLUSTER_ETCD_ENDPOINTS", func() error {
		_, err := etcd.New(context.Background(), cfg)
		return err
	})
}

func TestBadConfig(t *testing.T) {
	configcheck.ConfigErrors(t, etcd.DefaultConfig, func(ctx context.Context, c etcd.Config) error {
		_, err := etcd.New(ctx, c)
		return err
	}, map[string]configcheck.ConfigCase[etcd.Config]{
		"no endpoints":      {Mutate: func(c *etcd.Config) { c.Endpoints = " , " }, Key: "cluster.etcd.endpoints"},
		"short ttl":         {Mutate: func(c *etcd.Config) { c.TTL = time.Second }, Key: "cluster.etcd.ttl"},
		"fractional ttl":    {Mutate: func(c *etcd.Config) { c.TTL = 2500 * time.Millisecond }, Key: "cluster.etcd.ttl"},
		"slash in name":     {Mutate: func(c *etcd.Config) { c.ServiceName = "a/b" }, Key: "cluster.etcd.serviceName"},
		"auth without user": {Mutate: func(c *etcd.Config) { c.Authentication = true }, Key: "cluster.etcd.user"},
		"cert without key":  {Mutate: func(c *etcd.Config) { c.TLSCertFile = "x.pem" }, Key: "cluster.etcd.tlsCertFile"},
		"missing ca":        {Mutate: func(c *etcd.Config) { c.TLSCAFile = "/nonexistent/ca.pem" }, Key: "cluster.etcd.tlsCaFile"},
	})
}

func TestSelectedFromEnvironment(t *testing.T) {
	leakCheck(t)
	cfg, err := cluster.DefaultConfig(cluster.WithLookupEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_ETCD_ENDPOINTS": endpoint(), "SW_CLUSTER_ETCD_TTL": "3s"}[k]
		return v, ok
	}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*etcd.Coordinator); !ok {
		t.Fatalf("got %T", c)
	}
	// A misspelt key fails at load, before anything connects.
	if _, err := cluster.LoadConfig([]byte("cluster:\n  selector: etcd\n  etcd:\n    endpoint: x\n")); err == nil || !strings.Contains(err.Error(), "did you mean cluster.etcd.endpoints?") {
		t.Fatalf("misspelt key: err = %v", err)
	}
}

// TestRelistDropsNodesDeletedWhileTheWatchWasDown: the coordinator is cut
// off, a node's key is deleted and the history compacted, so the watch
// cannot resume and must list again; the list replaces the view, so the
// deleted node is gone from it.
func TestRelistDropsNodesDeletedWhileTheWatchWasDown(t *testing.T) {
	leakCheck(t)
	cfg := testConfig(t)
	proxy := testserver.StartProxy(t, endpoint())
	cut := cfg
	cut.Endpoints = proxy.Addr
	c := newCoordinator(t, cut)
	defer c.Close()
	self := register(t, c)

	raw := rawClient(t)
	other := clusterwait.NewNode()
	data, _ := backend.EncodeNode(other)
	if _, err := raw.Put(context.Background(), c.Prefix()+other.ID, string(data)); err != nil {
		t.Fatal(err)
	}
	w := c.Watch(t.Context())
	clusterwait.WaitFor(t, w, 5*time.Second, "both nodes", func(ns []cluster.Node) bool {
		return clusterwait.Has(ns, self.ID) && clusterwait.Has(ns, other.ID)
	})
	relists := c.Stats().Relists

	proxy.Partition()
	if _, err := raw.Delete(context.Background(), c.Prefix()+other.ID); err != nil {
		t.Fatal(err)
	}
	resp, err := raw.Put(context.Background(), "/herd-test/unrelated", "x") // a revision past the delete
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	proxy.Heal()

	clusterwait.WaitFor(t, w, 10*time.Second, "the deleted node gone, self kept", func(ns []cluster.Node) bool {
		return clusterwait.Has(ns, self.ID) && !clusterwait.Has(ns, other.ID)
	})
	if c.Stats().Relists == relists {
		t.Fatalf("the view changed without a re-list (%+v): the test did not exercise one", c.Stats())
	}
}

// A crashed process's entry lives until its lease expires. The same process
// restarted on the same address takes it over at once; another address is
// refused until the lease has expired, and then accepted. A key of ours
// that another process claims while ours is briefly gone is not put back
// over it.
func TestHeldIDAndItsExpiry(t *testing.T) {
	cfg := testConfig(t)
	raw := rawClient(t)
	n := clusterwait.NewNode()
	v, err := backend.EncodeNode(n)
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Namespace + "/" + cfg.ServiceName + "/" + n.ID
	crashed := func() clientv3.LeaseID { // the entry of a process that died without leaving
		g, err := raw.Grant(context.Background(), 60)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Put(context.Background(), k, string(v), clientv3.WithLease(g.ID)); err != nil {
			t.Fatal(err)
		}
		return g.ID
	}

	lease := crashed()
	moved := n
	moved.Address = clusterwait.NewNode().Address
	c := newCoordinator(t, cfg)
	if err := c.RegisterRemote(context.Background(), moved); !errors.Is(err, cluster.ErrDuplicateID) {
		t.Fatalf("registering at another address over a live lease: %v; want cluster.ErrDuplicateID", err)
	}
	if _, err := raw.Revoke(context.Background(), lease); err != nil { // the lease expires
		t.Fatal(err)
	}
	if err := c.RegisterRemote(context.Background(), moved); err != nil {
		t.Fatalf("registering once the old lease expired: %v", err)
	}
	c.Close()

	crashed()
	restarted := newCoordinator(t, cfg)
	defer restarted.Close()
	if err := restarted.RegisterRemote(context.Background(), n); err != nil {
		t.Fatalf("the same address restarted before its lease expired: %v", err)
	}
	got, err := raw.Get(context.Background(), k)
	if err != nil || len(got.Kvs) != 1 || clientv3.LeaseID(got.Kvs[0].Lease) == lease {
		t.Fatalf("the restarted node's key: %v, %v", got, err)
	}

	// Ours deleted, and at once claimed by another process at another
	// address: the supervisor must not put ours back over it.
	other := n
	other.Address = clusterwait.NewNode().Address
	ov, _ := backend.EncodeNode(other)
	g, err := raw.Grant(context.Background(), 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Delete(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Put(context.Background(), k, string(ov), clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // several supervisor rounds at this test's backoff
	got, err = raw.Get(context.Background(), k)
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != string(ov) {
		t.Fatalf("the other process's claim was overwritten: %v, %v", got, err)
	}
}

// A win whose leader key is gone by the time it arrives (its lease ended
// on the way) is no win: the check after a win says the session was lost.
func TestAWinWhoseKeyVanishedIsNoWin(t *testing.T) {
	leakCheck(t)
	c := newCoordinator(t, testConfig(t))
	defer c.Close()
	if err := c.LeaderKeyCheck(context.Background(), "kept", false); err != nil {
		t.Fatalf("a win whose key is there: %v", err)
	}
	if err := c.LeaderKeyCheck(context.Background(), "vanished", true); !errors.Is(err, cluster.ErrSessionLost) {
		t.Fatalf("a win whose key vanished: %v, want an error wrapping ErrSessionLost", err)
	}
}
