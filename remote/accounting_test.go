package remote_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/remote/internal/remotepb"
	"github.com/herd-go/herd/selector"
)

// A client that gives up (its peer never answers, and Close's flush time
// runs out) counts every message it could not send as Failed: the batch in
// hand and everything still queued.
func TestGivingUpCountsEveryQueuedMessage(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := cluster.ParseAddress(l.Addr().String())
	l.Close() // nothing listens: every stream attempt fails
	c, err := remote.DialPeer(cluster.Node{ID: "gone", Address: addr}, remote.WithMaxBatchMessages(10), remote.WithCloseTimeout(200*time.Millisecond), remote.WithReconnectBackoff(cluster.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	const total = 95
	for i := range total {
		if err := c.Send(context.Background(), "w", seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Close() // times out: nothing can be flushed
	if s := c.Stats(); s.Sent != 0 || s.Failed != total {
		t.Fatalf("stats %+v; want Sent 0 and Failed %d: every queued message is a loss the client knows of", s, total)
	}
}

// breakingService ends every stream as soon as it opens, like a peer whose
// handler keeps failing.
type breakingService struct {
	remotepb.UnimplementedRemoteServer
}

func (breakingService) Call(grpc.ClientStreamingServer[remotepb.Frame, remotepb.Summary]) error {
	return errors.New("broken on purpose")
}

// Every message is accounted for exactly once, as Sent or as Failed, when
// streams keep breaking; and the breaks are seen as failures, not sends.
func TestBrokenStreamsAreCountedAsFailed(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	remotepb.RegisterRemoteServer(g, breakingService{})
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	defer func() { g.Stop(); <-done }()

	addr, _ := cluster.ParseAddress(lis.Addr().String())
	c, err := remote.DialPeer(cluster.Node{ID: "breaks", Address: addr}, remote.WithMaxBatchMessages(1), remote.WithFlushDelay(-1), remote.WithCloseTimeout(3*time.Second), remote.WithReconnectBackoff(cluster.Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	// Spaced out, so that a write finds the stream already ended by the
	// server (a burst would sit in gRPC's buffers, a loss no client sees).
	const total = 40
	for i := range total {
		if err := c.Send(context.Background(), "w", seq(i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = c.Close()
	s := c.Stats()
	if s.Sent+s.Failed != total || s.Failed == 0 {
		t.Fatalf("stats %+v; want Sent+Failed = %d, with the broken writes in Failed", s, total)
	}
}

// routeLog records which peer each message was sent to.
type routeLog struct {
	mu  sync.Mutex
	got map[string]string // data → peer ID
}

type routedClient struct {
	id  string
	log *routeLog
}

func (c routedClient) Send(_ context.Context, _ string, data []byte) error {
	c.log.mu.Lock()
	c.log.got[string(data)] = c.id
	c.log.mu.Unlock()
	return nil
}
func (routedClient) Close() error { return nil }

// The Sender picks the peer the selector names over the sorted view, for a
// view of several nodes (over self alone every selector answers 0).
func TestSenderRoutesToTheSelectedPeer(t *testing.T) {
	log := &routeLog{got: map[string]string{}}
	src := newFake(node("b", "10.0.0.2", 1), node("a", "10.0.0.1", 1), node("c", "10.0.0.3", 1))
	m, err := remote.NewManager(src, self, remote.NewServer(), remote.WithRefreshInterval(time.Hour),
		remote.WithDialer(func(n cluster.Node) (remote.Client, error) { return routedClient{n.ID, log}, nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	snap := m.Snapshot()
	if snap.Len() != 4 {
		t.Fatalf("view %v, want a, b, c and self", addrs(snap))
	}
	s := remote.NewSender(m)
	for k := int32(-20); k < 20; k++ {
		data := fmt.Sprint(k)
		want := snap.ID(int(abs(k) % 4))
		if want == "self" {
			continue // served in-process, by a server with no handler here
		}
		if err := s.Send(context.Background(), "w", k, []byte(data), selector.HashCode{}); err != nil {
			t.Fatal(err)
		}
		log.mu.Lock()
		got := log.got[data]
		log.mu.Unlock()
		if got != want {
			t.Fatalf("key %d went to %q; HashCode over %v picks %q", k, got, addrs(snap), want)
		}
	}
}

func abs(k int32) int64 {
	if k < 0 {
		return -int64(k)
	}
	return int64(k)
}

// Under AcceptEmpty, a failed query is not an empty answer: the view keeps
// its peers through an outage.
func TestAcceptEmptyKeepsViewWhenQueryFails(t *testing.T) {
	a := node("a", "10.0.0.1", 1)
	src := newFake(a)
	m, _ := newManager(t, src, remote.WithEmptyPolicy(remote.AcceptEmpty))
	if m.Snapshot().Len() != 2 {
		t.Fatalf("view %v, want a and self", addrs(m.Snapshot()))
	}
	src.set(nil, errors.New("backend down"))
	if err := m.Refresh(context.Background()); err == nil {
		t.Fatal("a failed query was not reported")
	}
	if m.Snapshot().Len() != 2 {
		t.Fatalf("view %v after a failed query, want a kept", addrs(m.Snapshot()))
	}
}

// A node whose metadata alone changes is published in a new snapshot.
func TestMetadataChangeIsPublished(t *testing.T) {
	a := node("a", "10.0.0.1", 1)
	a.Meta = map[string]string{"zone": "z1"}
	src := newFake(a)
	m, _ := newManager(t, src)
	before := m.Snapshot()
	a2 := a
	a2.Meta = map[string]string{"zone": "z2"}
	src.set([]cluster.Node{a2}, nil)
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := m.Snapshot()
	if after.Version == before.Version {
		t.Fatal("a metadata change was not published")
	}
	for i := range after.Len() {
		if after.ID(i) == "a" && after.Node(i).Meta["zone"] != "z2" {
			t.Fatalf("node a has meta %v, want zone z2", after.Node(i).Meta)
		}
	}
}
