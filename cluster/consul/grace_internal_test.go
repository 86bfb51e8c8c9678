package consul

import (
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
)

// TestRestartGraceKeepsTheListedForOneTTL: after a failed query, the next
// answer opens a grace of one TTL that keeps the nodes listed before the
// outage; answers inside it do not replace that list; after it, nothing
// is kept and the list follows the answers again.
func TestRestartGraceKeepsTheListedForOneTTL(t *testing.T) {
	var g restartGrace
	now := time.Now()
	if grace, _ := g.answered(now, time.Second); grace {
		t.Fatal("a grace with no outage")
	}
	g.remember([]cluster.Node{{ID: "a"}, {ID: "b"}})
	g.failed()
	g.remember([]cluster.Node{{ID: "a"}}) // during the outage: not taken
	grace, listed := g.answered(now, time.Second)
	if !grace || !listed["a"] || !listed["b"] {
		t.Fatalf("the answer after an outage: grace %v, listed %v; want a grace keeping a and b", grace, listed)
	}
	g.remember([]cluster.Node{{ID: "a"}}) // inside the grace: not taken
	if grace, listed := g.answered(now.Add(500*time.Millisecond), time.Second); !grace || !listed["b"] {
		t.Fatalf("half a TTL later: grace %v, listed %v", grace, listed)
	}
	if grace, _ := g.answered(now.Add(1100*time.Millisecond), time.Second); grace {
		t.Fatal("the grace outlived its TTL")
	}
}
