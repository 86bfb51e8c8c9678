package consul_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/clustertest"
	"github.com/herd-go/herd/cluster/consul"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/configcheck"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
	"github.com/herd-go/herd/internal/testsupport/testenv"
	"github.com/herd-go/herd/internal/testsupport/testserver"
)

var logger = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConfig points at the agent scripts/test.sh (or compose.yaml) started,
// with a service name of the test's own so tests cannot see each other.
func testConfig(t *testing.T, addr string) consul.Config {
	cfg := consul.DefaultConfig()
	cfg.HostPort = addr
	cfg.ServiceName = "herd-test-" + cluster.NewID()[:8]
	cfg.CheckTTL = 5 * time.Second // checks stay passing on a loaded machine
	cfg.WaitTime = 10 * time.Second
	cfg.Timeout = 2 * time.Second
	return cfg
}

func newCoordinator(t *testing.T, cfg consul.Config) *consul.Coordinator {
	t.Helper()
	c, err := consul.New(context.Background(), cfg, cluster.WithLogger(logger), cluster.WithBackoff(cluster.Backoff{Initial: 50 * time.Millisecond, Max: time.Second}))
	if err != nil {
		t.Fatalf("consul.New: %v", err)
	}
	return c
}

func rawClient(t *testing.T, addr string) *api.Client {
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = addr
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cfg.Transport.CloseIdleConnections)
	return c
}

func TestConformance(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_CONSUL_ADDR", "a Consul agent")
	leakcheck.Register(t)
	cfg := testConfig(t, addr)
	clustertest.Run(t, clustertest.Harness{
		NewCoordinator: func(t *testing.T) cluster.Coordinator { return newCoordinator(t, cfg) },
		WriteMalformed: func(t *testing.T) {
			// Someone else's instance of our service, with an address no peer can dial.
			raw := rawClient(t, addr)
			// Consul itself refuses 0.0.0.0, so: an instance with no port to dial.
			reg := &api.AgentServiceRegistration{ID: "not-a-node", Name: cfg.ServiceName, Address: "127.0.0.1", Port: 0}
			if err := raw.Agent().ServiceRegister(reg); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = raw.Agent().ServiceDeregister("not-a-node") })
		},
		Malformed: func(c cluster.Coordinator) uint64 { return c.(*consul.Coordinator).Stats().Malformed },
		Election: &clustertest.Election{
			Partitioned: func(t *testing.T) (cluster.Coordinator, func()) {
				proxy := testserver.StartProxy(t, addr)
				pcfg := cfg
				pcfg.HostPort, pcfg.Timeout = proxy.Addr, time.Second
				return newCoordinator(t, pcfg), proxy.Partition
			},
			// Consul keeps a silent session up to twice its TTL (10s, the
			// least it allows), then refuses the key for the lock-delay.
			TakeoverWithin: 2*cfg.ElectionTTL + cfg.ElectionLockDelay + time.Second,
		},
		PutForeign: func(t *testing.T, n cluster.Node) {
			// An instance with no health check: Consul counts it as passing.
			raw := rawClient(t, addr)
			reg := &api.AgentServiceRegistration{ID: n.ID, Name: cfg.ServiceName, Address: n.Address.Host, Port: n.Address.Port, Meta: n.Meta}
			if err := raw.Agent().ServiceRegister(reg); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = raw.Agent().ServiceDeregister(n.ID) })
		},
		DeleteForeign: func(t *testing.T, nodes []cluster.Node) {
			// The agent API deletes one service a call; the catalog's
			// transaction API would be one write, but the agent would sync
			// its own services back.
			raw := rawClient(t, addr)
			for _, n := range nodes {
				if err := raw.Agent().ServiceDeregister(n.ID); err != nil {
					t.Fatal(err)
				}
			}
		},
		Recovery: func(t *testing.T) clustertest.RecoveryTarget {
			bin := testenv.Require(t, "HERD_CONSUL_BIN", "a consul binary, to kill and restart")
			srv := testserver.StartConsul(t, bin)
			rcfg := cfg
			rcfg.HostPort = srv.HTTPAddr
			return clustertest.RecoveryTarget{
				NewCoordinator: func(t *testing.T) cluster.Coordinator { return newCoordinator(t, rcfg) },
				Kill:           srv.Kill,
				Restart:        srv.Start,
				RestartEmpty:   srv.StartEmpty,
			}
		},
		RecoverWithin: 30 * time.Second,
		// The watch's and the check's retries are capped at 1s (WithBackoff),
		// and a first query held by a server still electing its leader is
		// asked again every 500ms (firstAnswer).
		ResumeWithin: time.Second,
	})
}

// registered starts a coordinator, closed when the test ends, with a new
// node registered through it.
func registered(t *testing.T, cfg consul.Config) (*consul.Coordinator, cluster.Node) {
	t.Helper()
	c := newCoordinator(t, cfg)
	t.Cleanup(func() { c.Close() })
	self := clusterwait.NewNode()
	if err := c.RegisterRemote(context.Background(), self); err != nil {
		t.Fatal(err)
	}
	return c, self
}

func TestReregistersWhenTheAgentForgetsIt(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_CONSUL_ADDR", "a Consul agent")
	leakcheck.Register(t)
	cfg := testConfig(t, addr)
	c, self := registered(t, cfg)
	raw := rawClient(t, addr)
	// What an agent restart without persisted state looks like: the agent no longer knows us.
	if err := raw.Agent().ServiceDeregister(self.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, _, err := raw.Health().Service(cfg.ServiceName, "", true, nil)
		if err == nil && len(entries) == 1 && entries[0].Service.ID == self.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not registered again within 10s; stats %+v", c.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c.Stats().Reregistrations == 0 {
		t.Fatalf("stats %+v", c.Stats())
	}
}

func TestFailsOverToTheNextAgent(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_CONSUL_ADDR", "a Consul agent")
	leakcheck.Register(t)
	cfg := testConfig(t, "127.0.0.1:1, "+addr)
	cfg.Timeout = 500 * time.Millisecond
	c, self := registered(t, cfg)
	nodes, err := c.QueryRemoteNodes(context.Background())
	if err != nil || !clusterwait.Has(nodes, self.ID) {
		t.Fatalf("view %v, err %v", clusterwait.IDs(nodes), err)
	}
}

// TestHealthyNodeIsNotRegisteredAgain: self is in the passing list, so the
// supervisor's "missing" check never fires.
func TestHealthyNodeIsNotRegisteredAgain(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_CONSUL_ADDR", "a Consul agent")
	leakcheck.Register(t)
	cfg := testConfig(t, addr)
	cfg.CheckTTL = 1500 * time.Millisecond // a check every 500ms: "missing" would fire after 1.5s
	c, _ := registered(t, cfg)
	time.Sleep(3 * time.Second)
	if n := c.Stats().Reregistrations; n != 0 {
		t.Fatalf("a healthy node was registered again %d times", n)
	}
}

// TestRegistersAgainWhenMissingFromPassing: the agent still takes the TTL
// updates, but self is not among the passing instances (here: put in
// maintenance out of band); after three checks herd registers again.
func TestRegistersAgainWhenMissingFromPassing(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_CONSUL_ADDR", "a Consul agent")
	leakcheck.Register(t)
	cfg := testConfig(t, addr)
	cfg.CheckTTL = 1500 * time.Millisecond
	c, self := registered(t, cfg)
	raw := rawClient(t, addr)
	if err := raw.Agent().EnableServiceMaintenance(self.ID, "herd test"); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitUntil(t, 10*time.Second, "a registration after three checks without self", func() bool {
		return c.Stats().Reregistrations > 0
	})
}

// TestSwitchesAgentAtRunTime: the agent herd uses dies; herd moves to the
// next one in hostPort and registers there.
func TestSwitchesAgentAtRunTime(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_CONSUL_ADDR", "a Consul agent")
	bin := testenv.Require(t, "HERD_CONSUL_BIN", "a consul binary, to start an agent the test can kill")
	leakcheck.Register(t)
	first := testserver.StartConsul(t, bin)
	cfg := testConfig(t, first.HTTPAddr+","+addr)
	cfg.CheckTTL = 1500 * time.Millisecond
	cfg.Timeout = 500 * time.Millisecond
	c, self := registered(t, cfg)
	second := rawClient(t, addr)
	time.Sleep(cfg.CheckTTL) // three checks on a healthy first agent: no reason to move
	if entries, _, err := second.Health().Service(cfg.ServiceName, "", true, nil); err != nil || len(entries) != 0 {
		t.Fatalf("self on the second agent before the switch: %v, %v", entries, err)
	}
	if s := c.Stats(); s.AgentSwitches != 0 {
		t.Fatalf("stats %+v while the first agent answers: want no switch", s)
	}
	first.Kill()
	clusterwait.WaitUntil(t, 15*time.Second, "self registered on the second agent", func() bool {
		entries, _, err := second.Health().Service(cfg.ServiceName, "", true, nil)
		return err == nil && len(entries) == 1 && entries[0].Service.ID == self.ID
	})
	if s := c.Stats(); s.AgentSwitches == 0 {
		t.Fatalf("stats %+v: want an agent switch", s)
	}
	w := c.Watch(t.Context())
	clusterwait.WaitFor(t, w, 15*time.Second, "the watch following the second agent", func(ns []cluster.Node) bool { return clusterwait.Has(ns, self.ID) })
}

func TestUnreachableAgentFailsFast(t *testing.T) {
	leakcheck.Register(t)
	cfg := consul.DefaultConfig()
	cfg.HostPort = "127.0.0.1:1"
	cfg.Timeout = 300 * time.Millisecond
	configcheck.FailsFast(t, 5*time.Second, "SW_CLUSTER_CONSUL_HOST_PORT", func() error {
		_, err := consul.New(context.Background(), cfg)
		return err
	})
}

func TestBadConfig(t *testing.T) {
	configcheck.ConfigErrors(t, consul.DefaultConfig, func(ctx context.Context, c consul.Config) error {
		_, err := consul.New(ctx, c)
		return err
	}, map[string]configcheck.ConfigCase[consul.Config]{
		"no hosts":             {Mutate: func(c *consul.Config) { c.HostPort = "," }, Key: "cluster.consul.hostPort"},
		"no service":           {Mutate: func(c *consul.Config) { c.ServiceName = "" }, Key: "cluster.consul.serviceName"},
		"tiny ttl":             {Mutate: func(c *consul.Config) { c.CheckTTL = time.Millisecond }, Key: "cluster.consul.checkTtl"},
		"reap under 1m":        {Mutate: func(c *consul.Config) { c.DeregisterCriticalServiceAfter = time.Second }, Key: "cluster.consul.deregisterCriticalServiceAfter"},
		"wait too long":        {Mutate: func(c *consul.Config) { c.WaitTime = time.Hour }, Key: "cluster.consul.waitTime"},
		"cert without key":     {Mutate: func(c *consul.Config) { c.TLSCertFile = "c.pem" }, Key: "cluster.consul.tlsCertFile"},
		"non-positive timeout": {Mutate: func(c *consul.Config) { c.Timeout = 0 }, Key: "cluster.consul.timeout"},
	})
}
