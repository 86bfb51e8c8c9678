package consul

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
)

// An agent that takes every TTL update and every registration, counts the
// registrations, and lists no instance of any service.
func fakeAgent(t *testing.T) (*api.Client, *atomic.Int32) {
	var registrations atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/agent/check/update/"):
		case r.URL.Path == "/v1/agent/service/register":
			registrations.Add(1)
		case strings.HasPrefix(r.URL.Path, "/v1/health/service/"):
			_, _ = w.Write([]byte("[]"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = strings.TrimPrefix(srv.URL, "http://")
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client, &registrations
}

// Self missing from the watched passing list for three checks in a row is
// registered again, once; two are not enough (the list can lag the check).
func TestKeepPassingRegistersAgainAfterThreeMisses(t *testing.T) {
	agent, registrations := fakeAgent(t)
	c := &Coordinator{cfg: DefaultConfig(), opts: backend.NewOptions(), clients: []*api.Client{agent}}
	c.cfg.Timeout = 2 * time.Second
	self := cluster.Node{ID: "self", Address: cluster.Address{Host: "10.0.0.1", Port: 11800}}
	other := cluster.Node{ID: "other", Address: cluster.Address{Host: "10.0.0.2", Port: 11800}}
	c.life.View.Publish([]cluster.Node{other}, self.ID)

	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(chan time.Time) // unbuffered: a send returns once the previous tick is handled
	done := make(chan struct{})
	go func() { defer close(done); c.keepPassing(ctx, self, ticks) }()
	defer func() { cancel(); <-done }()

	ticks <- time.Now()
	ticks <- time.Now()
	time.Sleep(100 * time.Millisecond) // lets the second tick, which should not register, finish
	if n := registrations.Load(); n != 0 {
		t.Fatalf("%d registrations after two checks without self, want 0", n)
	}
	ticks <- time.Now()
	clusterwait.WaitUntil(t, 5*time.Second, "a registration after three checks without self", func() bool { return registrations.Load() == 1 })
	clusterwait.WaitUntil(t, 5*time.Second, "the re-registration counted", func() bool { return c.Stats().Reregistrations == 1 })
	ticks <- time.Now()
	time.Sleep(100 * time.Millisecond)
	if n := registrations.Load(); n != 1 {
		t.Fatalf("%d registrations one check after registering again, want 1: the count of misses starts over", n)
	}
}

func TestNextIndex(t *testing.T) {
	for _, tc := range []struct{ prev, last, want uint64 }{
		{0, 7, 7}, // first answer
		{7, 9, 9}, // moved on
		{7, 7, 7}, // timed out unchanged
		{9, 4, 0}, // went backwards: start over
		{0, 0, 1}, // never block on 0
		{5, 0, 0}, // backwards to 0 is backwards
	} {
		if got := nextIndex(tc.prev, tc.last); got != tc.want {
			t.Errorf("nextIndex(%d, %d) = %d, want %d", tc.prev, tc.last, got, tc.want)
		}
	}
}

// A service instance without its own address is at its node's address; a
// node's metadata is the service's, nil when there is none.
func TestDecodeAddressAndMeta(t *testing.T) {
	c := &Coordinator{cfg: DefaultConfig(), opts: backend.NewOptions()}
	got := c.decode([]*api.ServiceEntry{
		{Node: &api.Node{Address: "10.0.0.9"}, Service: &api.AgentService{ID: "own", Address: "10.0.0.1", Port: 11800, Meta: map[string]string{"zone": "z1"}}},
		{Node: &api.Node{Address: "10.0.0.2"}, Service: &api.AgentService{ID: "node-addr", Port: 11800, Meta: map[string]string{}}},
		{Service: &api.AgentService{ID: "no-node", Address: "10.0.0.3", Port: 11800}},
	}, false)
	if len(got) != 3 {
		t.Fatalf("decoded %+v, want 3 nodes", got)
	}
	if got[0].Address.Host != "10.0.0.1" || got[0].Meta["zone"] != "z1" {
		t.Errorf("own address: %+v", got[0])
	}
	if got[1].Address.Host != "10.0.0.2" || got[1].Meta != nil {
		t.Errorf("node's address and nil metadata: %+v", got[1])
	}
	if got[2].Address.Host != "10.0.0.3" {
		t.Errorf("no node: %+v", got[2])
	}
}

// When the agent in use does not answer, herd moves to the next agent in
// hostPort and registers there at once (a new agent has never heard of it).
func TestKeepPassingRegistersWithTheNextAgent(t *testing.T) {
	next, registrations := fakeAgent(t)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // refuses connections from now on
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = strings.TrimPrefix(gone.URL, "http://")
	down, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &Coordinator{cfg: DefaultConfig(), opts: backend.NewOptions(), clients: []*api.Client{down, next}}
	self := cluster.Node{ID: "self", Address: cluster.Address{Host: "10.0.0.1", Port: 11800}}
	c.life.View.Publish([]cluster.Node{self}, self.ID)

	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(chan time.Time)
	done := make(chan struct{})
	go func() { defer close(done); c.keepPassing(ctx, self, ticks) }()
	defer func() { cancel(); <-done }()
	ticks <- time.Now()
	clusterwait.WaitUntil(t, 5*time.Second, "a registration with the next agent", func() bool { return registrations.Load() == 1 })
	if s := c.Stats(); s.AgentSwitches != 1 || s.Reregistrations != 1 {
		t.Fatalf("stats %+v, want one switch and one registration", s)
	}
}
