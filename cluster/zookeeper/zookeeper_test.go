package zookeeper_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/cluster/clustertest"
	"github.com/herd-go/herd/cluster/zookeeper"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/configcheck"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
	"github.com/herd-go/herd/internal/testsupport/testenv"
	"github.com/herd-go/herd/internal/testsupport/testserver"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConfig points at the server scripts/test.sh (or compose.yaml) started,
// in a namespace of the test's own.
func testConfig(addr string) zookeeper.Config {
	cfg := zookeeper.DefaultConfig()
	cfg.HostPort = addr
	cfg.Root = "/herd-test"
	cfg.Namespace = "t" + cluster.NewID()[:10]
	// Long enough that a loaded machine does not expire healthy sessions.
	cfg.SessionTimeout = 10 * time.Second
	cfg.ConnectTimeout = 5 * time.Second
	cfg.BaseSleepTimeMs = 50
	return cfg
}

func newCoordinator(t *testing.T, cfg zookeeper.Config) *zookeeper.Coordinator {
	t.Helper()
	c, err := zookeeper.New(context.Background(), cfg, cluster.WithLogger(quiet), cluster.WithBackoff(cluster.Backoff{Max: 500 * time.Millisecond}))
	if err != nil {
		t.Fatalf("zookeeper.New: %v", err)
	}
	return c
}

// znode is the path of the member znode named name, where a peer in another
// process would write.
func znode(cfg zookeeper.Config, name string) string {
	return cfg.Root + "/" + cfg.Namespace + "/remote/" + name
}

// rawConn is a plain client, to act on herd's znodes out of band.
func rawConn(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect([]string{addr}, 4*time.Second, zk.WithLogInfo(false), zk.WithLogger(zkQuiet{}))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range events {
		}
	}()
	t.Cleanup(conn.Close)
	clusterwait.WaitUntil(t, 5*time.Second, "a session for the raw client", func() bool { return conn.State() == zk.StateHasSession })
	return conn
}

type zkQuiet struct{}

func (zkQuiet) Printf(string, ...any) {}

func TestConformance(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	leakcheck.Register(t)
	cfg := testConfig(addr)
	clustertest.Run(t, clustertest.Harness{
		NewCoordinator: func(t *testing.T) cluster.Coordinator { return newCoordinator(t, cfg) },
		WriteMalformed: func(t *testing.T) {
			raw := rawConn(t, addr)
			for name, data := range map[string]string{"garbage": "{not json", "mismatch": `{"id":"other","host":"127.0.0.1","port":1}`} {
				if _, err := raw.Create(znode(cfg, name), []byte(data), 0, zk.WorldACL(zk.PermAll)); err != nil {
					t.Fatal(err)
				}
			}
		},
		Malformed: func(c cluster.Coordinator) uint64 { return c.(*zookeeper.Coordinator).Stats().Malformed },
		Election: &clustertest.Election{
			Partitioned: func(t *testing.T) (cluster.Coordinator, func()) {
				proxy := testserver.StartProxy(t, addr)
				pcfg := cfg
				pcfg.HostPort, pcfg.SessionTimeout, pcfg.ConnectTimeout = proxy.Addr, electionSession, time.Second
				return newCoordinator(t, pcfg), proxy.Partition
			},
			// The server deletes the crashed leader's znode when it expires
			// the session; the next candidate's watch fires at once.
			TakeoverWithin: electionSession + time.Second,
		},
		PutForeign: func(t *testing.T, n cluster.Node) {
			data, err := backend.EncodeNode(n)
			if err != nil {
				t.Fatal(err)
			}
			raw := rawConn(t, addr)
			if _, err := raw.Create(znode(cfg, n.ID), data, 0, zk.WorldACL(zk.PermAll)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = raw.Delete(znode(cfg, n.ID), -1) })
		},
		DeleteForeign: func(t *testing.T, nodes []cluster.Node) {
			var deletes []any // one multi-op: one transaction, as a wipe would be
			for _, n := range nodes {
				deletes = append(deletes, &zk.DeleteRequest{Path: znode(cfg, n.ID), Version: -1})
			}
			if _, err := rawConn(t, addr).Multi(deletes...); err != nil {
				t.Fatal(err)
			}
		},
		Recovery: func(t *testing.T) clustertest.RecoveryTarget {
			cp := testenv.Require(t, "HERD_ZK_CLASSPATH", "ZooKeeper's classpath, to kill and restart a server")
			srv := testserver.StartZooKeeper(t, cp)
			rcfg := cfg
			rcfg.HostPort = srv.Addr
			return clustertest.RecoveryTarget{
				NewCoordinator: func(t *testing.T) cluster.Coordinator { return newCoordinator(t, rcfg) },
				Kill:           srv.Kill,
				Restart:        srv.Start,
				RestartEmpty:   srv.StartEmpty,
			}
		},
		RecoverWithin: 30 * time.Second,
		// herd's host ring redials every <= 250ms (go-zookeeper alone
		// pauses a second after each round of its server list).
		ResumeWithin: time.Second,
	})
}

// electionSession is the session timeout of the election tests' crashing
// leader: short, for a quick takeover.
const electionSession = 4 * time.Second

func register(t *testing.T, c *zookeeper.Coordinator) cluster.Node {
	t.Helper()
	n := clusterwait.NewNode()
	if err := c.RegisterRemote(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	return n
}

func owner(t *testing.T, raw *zk.Conn, path string) int64 {
	t.Helper()
	ok, stat, err := raw.Exists(path)
	if err != nil || !ok {
		return 0
	}
	return stat.EphemeralOwner
}

// behindProxy registers a node through a coordinator that reaches the
// server through a proxy, and returns them, a direct client, and the path of
// the node's znode.
func behindProxy(t *testing.T, sessionTimeout time.Duration) (*testserver.Proxy, *zookeeper.Coordinator, *zk.Conn, string) {
	t.Helper()
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	leakcheck.Register(t)
	proxy := testserver.StartProxy(t, addr)
	cfg := testConfig(proxy.Addr)
	cfg.SessionTimeout = sessionTimeout
	c := newCoordinator(t, cfg)
	t.Cleanup(func() { c.Close() })
	self := register(t, c)
	return proxy, c, rawConn(t, addr), c.Path() + "/" + self.ID
}

// TestSessionExpiryRecreatesTheNode cuts the client off from a live server
// for longer than the session timeout, so the server really expires the
// session; herd must register again in the new session.
func TestSessionExpiryRecreatesTheNode(t *testing.T) {
	proxy, c, raw, path := behindProxy(t, 2*time.Second)
	first := owner(t, raw, path)
	if first == 0 {
		t.Fatal("self's znode missing after RegisterRemote")
	}

	proxy.Partition()
	// The server deletes the znode when it expires the session.
	clusterwait.WaitUntil(t, 15*time.Second, "the server expiring the partitioned session", func() bool { return owner(t, raw, path) == 0 })
	proxy.Heal()
	deadline := time.Now().Add(15 * time.Second)
	for {
		o := owner(t, raw, path)
		if o != 0 && o != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("self not registered again in a new session; stats %+v", c.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c.Stats().Reregistrations == 0 {
		t.Fatalf("stats %+v", c.Stats())
	}
}

// A partition shorter than the session timeout keeps the session: the
// client reconnects into it, the znode keeps its owner, and herd does not
// replace the connection (which it does only after a session timeout
// without a session, for a server that came back empty).
// A server restarted on an empty data directory refuses a client that has
// seen a newer zxid, for ever and without saying why. herd connects afresh
// once every handshake has been refused for 2s, well before the session
// timeout (20s here) that would otherwise have to pass first.
func TestEmptyServerIsRejoinedBeforeTheSessionTimeout(t *testing.T) {
	cp := testenv.Require(t, "HERD_ZK_CLASSPATH", "ZooKeeper's classpath, to restart a server empty")
	leakcheck.Register(t)
	srv := testserver.StartZooKeeper(t, cp)
	cfg := testConfig(srv.Addr)
	cfg.SessionTimeout = 20 * time.Second
	c := newCoordinator(t, cfg)
	defer c.Close()
	self := register(t, c)
	path := c.Path() + "/" + self.ID

	// Let the client see more transactions than the empty server will have
	// when it reconnects (every new session is one), so that the server
	// refuses the old session and herd must replace the connection.
	before := rawConn(t, srv.Addr)
	for i := range 50 {
		if _, err := before.Create(fmt.Sprintf("/herd-noise-%d", i), nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.QueryRemoteNodes(context.Background()); err != nil { // reads the server's latest zxid
		t.Fatal(err)
	}

	srv.Kill()
	srv.StartEmpty()
	raw := rawConn(t, srv.Addr)
	clusterwait.WaitUntil(t, 10*time.Second, "self's znode on the empty server", func() bool { return owner(t, raw, path) != 0 })
	// Usually the empty server refuses the old session (the client has seen
	// newer transactions) and herd replaces the connection. Sometimes it
	// answers "expired" instead, and go-zookeeper opens a new session on the
	// same connection: also a rejoin, counted as a re-registration only.
	s := c.Stats()
	if s.Reconnections == 0 && s.Reregistrations == 0 {
		t.Fatalf("stats %+v: self's znode is back but neither a fresh connection nor a re-registration was counted", s)
	}
	t.Logf("rejoined with %d fresh connection(s) and %d re-registration(s)", s.Reconnections, s.Reregistrations)
}

// A server that accepts a connection and never answers the session handshake
// (a starting ZooKeeper can) must not hold the client: go-zookeeper alone
// waits ten receive timeouts (67s here) on it; herd gives up on it after
// 500ms and dials again.
func TestUnansweredHandshakeIsAbandoned(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	leakcheck.Register(t)
	proxy := testserver.StartProxy(t, addr)
	proxy.Stall()
	cfg := testConfig(proxy.Addr)
	time.AfterFunc(200*time.Millisecond, proxy.Heal) // only connections made from now are answered
	c, err := zookeeper.New(context.Background(), cfg, cluster.WithLogger(quiet))
	if err != nil {
		t.Fatalf("New behind a server that left the first handshake unanswered: %v", err)
	}
	c.Close()
}

func TestShortPartitionKeepsTheSession(t *testing.T) {
	proxy, c, raw, path := behindProxy(t, 6*time.Second)
	first := owner(t, raw, path)

	proxy.Partition()
	time.Sleep(3 * time.Second) // half the session timeout; herd checks every quarter of it
	proxy.Heal()
	time.Sleep(2 * time.Second) // the client redials every <= 250ms; leave it time to reconnect
	if got := owner(t, raw, path); got != first {
		t.Fatalf("self's znode is owned by session %x after a short partition, was %x", got, first)
	}
	if s := c.Stats(); s.Reconnections != 0 || s.Reregistrations != 0 {
		t.Fatalf("stats %+v after a partition shorter than the session timeout: want the same connection and znode", s)
	}
}

// TestStaleZnodeIsReplaced: a znode of another session at self's path (a
// previous process with this ID whose session has not expired yet) is
// deleted and created again in ours.
func TestStaleZnodeIsReplaced(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	leakcheck.Register(t)
	cfg := testConfig(addr)
	c := newCoordinator(t, cfg)
	defer c.Close()
	raw := rawConn(t, addr)
	self := clusterwait.NewNode()
	path := c.Path() + "/" + self.ID
	if _, err := raw.Create(path, []byte("stale"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	stale := owner(t, raw, path)
	if err := c.RegisterRemote(context.Background(), self); err != nil {
		t.Fatal(err)
	}
	if o := owner(t, raw, path); o == 0 || o == stale {
		t.Fatalf("znode owner %#x, want a new session (stale was %#x)", o, stale)
	}
	nodes, err := c.QueryRemoteNodes(context.Background())
	if err != nil || !clusterwait.Has(nodes, self.ID) {
		t.Fatalf("view %v, err %v", clusterwait.IDs(nodes), err)
	}
}

func TestZnodeDeletedOutOfBandComesBack(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	leakcheck.Register(t)
	c := newCoordinator(t, testConfig(addr))
	defer c.Close()
	self := register(t, c)
	raw := rawConn(t, addr)
	path := c.Path() + "/" + self.ID
	if err := raw.Delete(path, -1); err != nil {
		t.Fatal(err)
	}
	// The watch sees the deletion and nudges the supervisor; its own periodic
	// check (every 5s here) must not be what brings the znode back.
	clusterwait.WaitUntil(t, 2*time.Second, "the znode created again", func() bool { return owner(t, raw, path) != 0 })
}

// The whole remote path deleted out of band: the watch makes it again and
// keeps watching, and self comes back in it.
func TestRemotePathDeletedOutOfBand(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	leakcheck.Register(t)
	cfg := testConfig(addr)
	c := newCoordinator(t, cfg)
	defer c.Close()
	self := register(t, c)
	raw := rawConn(t, addr)
	w := c.Watch(t.Context())
	if _, err := raw.Multi(&zk.DeleteRequest{Path: c.Path() + "/" + self.ID, Version: -1}, &zk.DeleteRequest{Path: c.Path(), Version: -1}); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitUntil(t, 5*time.Second, "self's znode made again under a new remote path", func() bool { return owner(t, raw, c.Path()+"/"+self.ID) != 0 })
	other := newCoordinator(t, cfg)
	defer other.Close()
	newcomer := register(t, other)
	clusterwait.WaitFor(t, w, 5*time.Second, "a newcomer in the watch after the path was made again", func(ns []cluster.Node) bool {
		return clusterwait.Has(ns, self.ID) && clusterwait.Has(ns, newcomer.ID)
	})
}

// TestHealthyZnodeIsLeftAlone: the supervisor's periodic check finds self's
// znode owned by its own session and changes nothing.
func TestHealthyZnodeIsLeftAlone(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	leakcheck.Register(t)
	cfg := testConfig(addr)
	cfg.SessionTimeout = 3 * time.Second // the supervisor checks every 1.5s
	c := newCoordinator(t, cfg)
	defer c.Close()
	self := register(t, c)
	raw := rawConn(t, addr)
	path := c.Path() + "/" + self.ID
	_, before, err := raw.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond) // two checks
	_, after, err := raw.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	if after.Czxid != before.Czxid || c.Stats().Reregistrations != 0 {
		t.Fatalf("a healthy znode was written again (created at zxid %d, now %d; %d re-registrations)", before.Czxid, after.Czxid, c.Stats().Reregistrations)
	}
}

func TestDigestACL(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	leakcheck.Register(t)
	cfg := testConfig(addr)
	cfg.EnableACL, cfg.Expression = true, "herd:secret"
	c := newCoordinator(t, cfg)
	defer c.Close()
	self := register(t, c)
	path := c.Path() + "/" + self.ID

	anonymous := rawConn(t, addr)
	if _, _, err := anonymous.Get(path); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("read without credentials: err = %v, want ErrNoAuth", err)
	}
	// Another session, anonymous or with another digest, can neither
	// overwrite nor delete herd's znodes, nor add an entry beside them.
	stranger := rawConn(t, addr)
	if err := stranger.AddAuth("digest", []byte("mallory:guess")); err != nil {
		t.Fatal(err)
	}
	for name, conn := range map[string]*zk.Conn{"anonymous": anonymous, "another digest": stranger} {
		if _, err := conn.Set(path, []byte(`{"id":"x","host":"10.6.6.6","port":1}`), -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("%s overwriting self's znode: err = %v, want ErrNoAuth", name, err)
		}
		if err := conn.Delete(path, -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("%s deleting self's znode: err = %v, want ErrNoAuth", name, err)
		}
		if _, err := conn.Create(c.Path()+"/intruder", []byte("{}"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("%s adding an entry: err = %v, want ErrNoAuth", name, err)
		}
		if err := conn.Delete(c.Path(), -1); !errors.Is(err, zk.ErrNoAuth) && !errors.Is(err, zk.ErrNotEmpty) {
			t.Errorf("%s deleting the remote path: err = %v", name, err)
		}
	}
	if ok, _, err := anonymous.Exists(path); err != nil || !ok {
		t.Fatalf("self's znode after the attempts: exists %v, %v", ok, err)
	}
	authed := rawConn(t, addr)
	if err := authed.AddAuth("digest", []byte("herd:secret")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := authed.Get(path); err != nil {
		t.Fatalf("read with credentials: %v", err)
	}
	acl, _, err := authed.GetACL(path)
	if err != nil || len(acl) != 1 || acl[0].Scheme != "digest" || !strings.HasPrefix(acl[0].ID, "herd:") {
		t.Fatalf("ACL = %+v, %v", acl, err)
	}

	// Wrong credentials fail at start-up, naming the setting to check.
	wrong := cfg
	wrong.Expression = "herd:wrong"
	_, err = zookeeper.New(context.Background(), wrong, cluster.WithLogger(quiet))
	if !errors.Is(err, zk.ErrNoAuth) || !strings.Contains(err.Error(), "expression") {
		t.Fatalf("start with the wrong credentials: err = %v, want ErrNoAuth naming the expression", err)
	}
}

func TestConnectIsBounded(t *testing.T) {
	leakcheck.Register(t)
	cfg := zookeeper.DefaultConfig()
	cfg.HostPort = "127.0.0.1:1"
	cfg.ConnectTimeout = 500 * time.Millisecond
	configcheck.FailsFast(t, 5*time.Second, "SW_CLUSTER_ZK_HOST_PORT", func() error {
		_, err := zookeeper.New(context.Background(), cfg, cluster.WithLogger(quiet))
		return err
	})
}

func TestBadConfig(t *testing.T) {
	configcheck.ConfigErrors(t, zookeeper.DefaultConfig, func(ctx context.Context, c zookeeper.Config) error {
		_, err := zookeeper.New(ctx, c)
		return err
	}, map[string]configcheck.ConfigCase[zookeeper.Config]{
		"no hosts":         {Mutate: func(c *zookeeper.Config) { c.HostPort = "" }, Key: "cluster.zookeeper.hostPort"},
		"relative root":    {Mutate: func(c *zookeeper.Config) { c.Root = "skywalking" }, Key: "cluster.zookeeper.root"},
		"nested namespace": {Mutate: func(c *zookeeper.Config) { c.Namespace = "a/b" }, Key: "cluster.zookeeper.namespace"},
		"other schema":     {Mutate: func(c *zookeeper.Config) { c.EnableACL, c.Schema = true, "ip" }, Key: "cluster.zookeeper.schema"},
		"bad expression":   {Mutate: func(c *zookeeper.Config) { c.EnableACL, c.Expression = true, "nopassword" }, Key: "cluster.zookeeper.expression"},
		"tiny session":     {Mutate: func(c *zookeeper.Config) { c.SessionTimeout = time.Millisecond }, Key: "cluster.zookeeper.sessionTimeout"},
		"zero sleep":       {Mutate: func(c *zookeeper.Config) { c.BaseSleepTimeMs = 0 }, Key: "cluster.zookeeper.baseSleepTimeMs"},
	})
}

// memberData is a member entry as a peer in another process writes it.
func memberData(t *testing.T, id, host string, meta map[string]string) []byte {
	t.Helper()
	data, err := backend.EncodeNode(cluster.Node{ID: id, Address: cluster.Address{Host: host, Port: 11800}, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAJoinReadsOnlyTheNewcomer: the watch keeps what it read, so a join
// among many members costs one read (the newcomer's), not one per member.
func TestAJoinReadsOnlyTheNewcomer(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	leakcheck.Register(t)
	cfg := testConfig(addr)
	c := newCoordinator(t, cfg)
	defer c.Close()
	register(t, c)
	raw := rawConn(t, addr)
	for i := range 20 {
		id := fmt.Sprintf("peer-%02d", i)
		if _, err := raw.Create(znode(cfg, id), memberData(t, id, fmt.Sprintf("10.0.0.%d", i+1), nil), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	w := c.Watch(context.Background())
	clusterwait.WaitFor(t, w, 5*time.Second, "21 members", func(ns []cluster.Node) bool { return len(ns) == 21 })
	before := c.Stats().EntryReads
	if _, err := raw.Create(znode(cfg, "newcomer"), memberData(t, "newcomer", "10.0.1.1", nil), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitFor(t, w, 5*time.Second, "the newcomer", func(ns []cluster.Node) bool { return clusterwait.Has(ns, "newcomer") })
	if n := c.Stats().EntryReads - before; n != 1 {
		t.Fatalf("a join among 21 members read %d znodes, want 1", n)
	}
}

// TestRewrittenEntriesAreReadAgain: a member znode rewritten in place, or
// deleted and made again under the same name, is read again, though the
// list of names may not change.
func TestRewrittenEntriesAreReadAgain(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	leakcheck.Register(t)
	cfg := testConfig(addr)
	c := newCoordinator(t, cfg)
	defer c.Close()
	register(t, c)
	raw := rawConn(t, addr)
	path := znode(cfg, "peer")
	if _, err := raw.Create(path, memberData(t, "peer", "10.0.0.1", map[string]string{"v": "1"}), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	w := c.Watch(context.Background())
	meta := func(v string) func([]cluster.Node) bool {
		return func(ns []cluster.Node) bool {
			for _, n := range ns {
				if n.ID == "peer" {
					return n.Meta["v"] == v
				}
			}
			return false
		}
	}
	clusterwait.WaitFor(t, w, 5*time.Second, "the peer, v=1", meta("1"))
	if _, err := raw.Set(path, memberData(t, "peer", "10.0.0.1", map[string]string{"v": "2"}), -1); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitFor(t, w, 5*time.Second, "the rewritten peer, v=2", meta("2"))

	// Deleted and made again in one transaction: the list of names is the
	// same before and after.
	if _, err := raw.Multi(&zk.DeleteRequest{Path: path, Version: -1},
		&zk.CreateRequest{Path: path, Data: memberData(t, "peer", "10.0.0.2", map[string]string{"v": "3"}), Acl: zk.WorldACL(zk.PermAll), Flags: zk.FlagEphemeral}); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitFor(t, w, 5*time.Second, "the peer made again, v=3", meta("3"))

	if _, err := raw.Set(path, []byte("not a node"), -1); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitFor(t, w, 5*time.Second, "the peer gone once its entry is garbage", func(ns []cluster.Node) bool { return !clusterwait.Has(ns, "peer") })
	if c.Stats().Malformed != 1 {
		t.Errorf("malformed = %d, want 1", c.Stats().Malformed)
	}
}

// A leader whose candidate znode someone else deletes leads no more: its
// Done closes with ErrSessionLost, since the next candidate can win at once.
func TestALeaderWhoseZnodeIsDeletedLosesTheLead(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	leakcheck.Register(t)
	cfg := testConfig(addr)
	c := newCoordinator(t, cfg)
	defer c.Close()
	register(t, c)
	l, err := c.Campaign(context.Background(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(context.Background())
	raw := rawConn(t, addr)
	dir := cfg.Root + "/" + cfg.Namespace + "/remote.election/jobs"
	children, _, err := raw.Children(dir)
	if err != nil || len(children) != 1 {
		t.Fatalf("the election's candidates: %v, %v; want the leader's znode alone", children, err)
	}
	if err := raw.Delete(dir+"/"+children[0], -1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the leadership held 10s after its znode was deleted")
	}
	if !errors.Is(l.Err(), cluster.ErrSessionLost) {
		t.Fatalf("Err = %v, want ErrSessionLost", l.Err())
	}
}
