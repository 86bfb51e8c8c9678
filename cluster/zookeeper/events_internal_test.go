package zookeeper

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/internal/testsupport/testenv"
)

// A new session nudges the supervisor; a watch event does not.
func TestEventLoopNudgesOnANewSession(t *testing.T) {
	c := &Coordinator{opts: backend.NewOptions(), sessions: make(chan struct{}, 1)}
	events := make(chan zk.Event, 2)
	events <- zk.Event{Type: zk.EventNodeChildrenChanged, State: zk.StateHasSession, Path: "/x"}
	close(events)
	c.eventLoop(events)
	select {
	case <-c.sessions:
		t.Fatal("a watch event nudged the supervisor")
	default:
	}
	events = make(chan zk.Event, 1)
	events <- zk.Event{Type: zk.EventSession, State: zk.StateHasSession}
	close(events)
	c.eventLoop(events)
	select {
	case <-c.sessions:
	default:
		t.Fatal("a new session did not nudge the supervisor")
	}
}

// createSelf makes the remote path again when it is gone, and then self.
func TestCreateSelfMakesThePathAgain(t *testing.T) {
	addr := testenv.Require(t, "HERD_TEST_ZK_ADDR", "a ZooKeeper server")
	cfg := DefaultConfig()
	cfg.HostPort = addr
	cfg.Root = "/herd-test"
	cfg.Namespace = "t" + cluster.NewID()[:10]
	cfg.SessionTimeout = 10 * time.Second
	c, err := New(context.Background(), cfg, cluster.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.zk().Delete(c.path, -1); err != nil {
		t.Fatal(err)
	}
	p := c.path + "/self"
	if err := c.createSelf(p, []byte(`{}`), cluster.Node{}); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := c.zk().Exists(p); err != nil || !ok {
		t.Fatalf("createSelf returned without the znode: exists %v, %v", ok, err)
	}
}
