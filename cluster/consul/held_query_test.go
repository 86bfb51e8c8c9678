package consul_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
)

// A Consul server electing a leader holds the queries made meanwhile and
// looks again only after doubling waits, so such a query can come back
// seconds after one made later. The watch must not wait on it: this agent
// never answers the first query, and answers every later one at once.
func TestWatchAsksAgainWhenTheFirstQueryIsHeld(t *testing.T) {
	leakcheck.Register(t)
	var lists atomic.Int32
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/status/leader":
			fmt.Fprint(w, `"127.0.0.1:8300"`)
		case r.URL.Path == "/v1/acl/token/self":
			noACLs(w)
		case strings.HasPrefix(r.URL.Path, "/v1/health/service/"):
			if r.URL.Query().Get("index") != "" || lists.Add(1) == 1 {
				<-r.Context().Done() // the held first query, and every blocking one
				return
			}
			w.Header().Set("X-Consul-Index", "5")
			w.Header().Set("X-Consul-KnownLeader", "true")
			fmt.Fprint(w, `[{"Node":{"Node":"n1","Address":"10.0.0.1"},"Service":{"ID":"node-a","Service":"svc","Address":"10.0.0.1","Port":11800},"Checks":[]}]`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer agent.Close()

	c := newCoordinator(t, testConfig(t, strings.TrimPrefix(agent.URL, "http://")))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := c.Watch(ctx)
	clusterwait.WaitFor(t, w, 5*time.Second, "node-a from a later query while the first is held", func(v []cluster.Node) bool {
		return len(v) == 1 && v[0].ID == "node-a"
	})
}

// noACLs answers as an agent without ACLs does when asked about a token.
func noACLs(w http.ResponseWriter) {
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprint(w, "ACL support disabled")
}

// An agent that holds every query is asked again and again, but with at most
// eight questions waiting at once: the oldest is ended to make room.
func TestHeldQueriesAreBounded(t *testing.T) {
	leakcheck.Register(t)
	var inFlight, most, lists atomic.Int32
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status/leader" {
			fmt.Fprint(w, `"127.0.0.1:8300"`)
			return
		}
		if r.URL.Path == "/v1/acl/token/self" {
			noACLs(w)
			return
		}
		lists.Add(1)
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-r.Context().Done()
		inFlight.Add(-1)
	}))
	defer agent.Close()
	c := newCoordinator(t, testConfig(t, strings.TrimPrefix(agent.URL, "http://")))
	clusterwait.WaitUntil(t, 15*time.Second, "more questions than may wait at once", func() bool { return lists.Load() > 10 })
	c.Close()
	// The oldest is ended before the next is asked, but the agent learns of
	// it only when the connection closes, so it may count one more.
	if m := most.Load(); m > 9 {
		t.Fatalf("%d questions waited at once, want at most 8 (9 as the agent counts)", m)
	}
}
