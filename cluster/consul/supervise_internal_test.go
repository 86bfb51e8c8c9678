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
	"github.com/herd-go/herd/cluster/clustertest"
)

// An agent that takes every TTL update and every registration, and counts
// the registrations.
func fakeAgent(t *testing.T) (*api.Client, *atomic.Int32) {
	var registrations atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/agent/check/update/"):
		case r.URL.Path == "/v1/agent/service/register":
			registrations.Add(1)
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
	c := &Coordinator{cfg: DefaultConfig(), opts: cluster.NewOptions(), clients: []*api.Client{agent}}
	c.cfg.Timeout = 2 * time.Second
	self := cluster.Node{ID: "self", Address: cluster.Address{Host: "10.0.0.1", Port: 11800}}
	other := cluster.Node{ID: "other", Address: cluster.Address{Host: "10.0.0.2", Port: 11800}}
	c.view.Publish([]cluster.Node{other}, self.ID)

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
	clustertest.WaitUntil(t, 5*time.Second, "a registration after three checks without self", func() bool { return registrations.Load() == 1 })
	clustertest.WaitUntil(t, 5*time.Second, "the re-registration counted", func() bool { return c.Stats().Reregistrations == 1 })
	ticks <- time.Now()
	time.Sleep(100 * time.Millisecond)
	if n := registrations.Load(); n != 1 {
		t.Fatalf("%d registrations one check after registering again, want 1: the count of misses starts over", n)
	}
}
