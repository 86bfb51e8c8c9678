package remote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/remote/internal/remotepb"
	"github.com/herd-go/herd/selector"
)

// sendAll queues messages of 5 bytes each (worker "w", 4 bytes of data)
// back to back, closes the client (flushing) and returns its stats.
func sendAll(t *testing.T, count int, opts ...remote.ClientOption) remote.ClientStats {
	t.Helper()
	p, rec := recordingPeer(t)
	c, err := remote.DialPeer(p.node(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range count {
		if err := c.Send(context.Background(), "w", seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if rec.count() != count {
		t.Fatalf("delivered %d of %d", rec.count(), count)
	}
	return c.Stats()
}

// A batch holds at most MaxBatchMessages messages, and stops growing once it
// holds MaxBatchBytes. The messages are queued at once, and the linger is
// long, so every batch but the last is full.
func TestBatchLimits(t *testing.T) {
	if s := sendAll(t, 10, remote.WithMaxBatchMessages(3), remote.WithFlushDelay(200*time.Millisecond)); s.Batches != 4 || s.Sent != 10 {
		t.Errorf("10 messages, at most 3 a batch: %+v, want 4 batches (3, 3, 3, 1)", s)
	}
	if s := sendAll(t, 10, remote.WithMaxBatchBytes(15), remote.WithFlushDelay(200*time.Millisecond)); s.Batches != 4 || s.Sent != 10 {
		t.Errorf("10 messages of 5 bytes, 15 bytes a batch: %+v, want 4 batches (3, 3, 3, 1)", s)
	}
}

// A configured linger is kept: a message sent while the first one waits
// joins its batch.
func TestFlushDelayLingers(t *testing.T) {
	p, rec := recordingPeer(t)
	c := dial(t, p.node(), remote.WithFlushDelay(300*time.Millisecond))
	_ = c.Send(context.Background(), "w", seq(0))
	time.Sleep(50 * time.Millisecond)
	_ = c.Send(context.Background(), "w", seq(1))
	waitCount(t, rec, 2, 2*time.Second)
	if s := statsWhen(t, c, time.Second, func(s remote.ClientStats) bool { return s.Batches > 0 }); s.Batches != 1 {
		t.Fatalf("%+v: want the two messages in one batch", s)
	}
}

// A batch that fills goes at once, however long the linger: the send loop
// is told of a full batch, not only of the first message.
func TestFullBatchDoesNotWaitForTheLinger(t *testing.T) {
	p, rec := recordingPeer(t)
	c := dial(t, p.node(), remote.WithMaxBatchMessages(4), remote.WithFlushDelay(time.Hour))
	for i := range 4 {
		time.Sleep(20 * time.Millisecond) // the send loop waits in the linger before each
		if err := c.Send(context.Background(), "w", seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, rec, 4, 5*time.Second)
}

// A lone message goes once the linger has passed: the send loop, waiting
// for work, is told of the first message queued.
func TestALoneMessageGoesAfterTheLinger(t *testing.T) {
	p, rec := recordingPeer(t)
	c := dial(t, p.node(), remote.WithFlushDelay(10*time.Millisecond))
	for i := range 3 {
		if err := c.Send(context.Background(), "w", seq(i)); err != nil {
			t.Fatal(err)
		}
		waitCount(t, rec, i+1, 5*time.Second) // then the loop waits for the next
	}
}

// The default size limit is 4 MiB - 64 KiB, worker name included.
func TestDefaultMessageLimit(t *testing.T) {
	srv := remote.NewServer()
	_ = srv.Handle("w", remote.HandlerFunc(func(context.Context, []byte) {}))
	p := startPeer(t, "127.0.0.1:0", srv)
	c := dial(t, p.node())
	limit := 4<<20 - 64<<10
	if err := c.Send(context.Background(), "w", make([]byte, limit-1)); err != nil {
		t.Fatalf("a message of exactly the limit: %v", err)
	}
	if err := c.Send(context.Background(), "w", make([]byte, limit)); !errors.Is(err, remote.ErrMessageTooLarge) {
		t.Fatalf("one byte over the limit: %v", err)
	}
}

// The server answers each stream with what it did: delivered and unknown.
func TestServerSummary(t *testing.T) {
	srv := remote.NewServer()
	_ = srv.Handle("known", remote.HandlerFunc(func(context.Context, []byte) {}))
	p := startPeer(t, "127.0.0.1:0", srv)
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := batchStream(t.Context(), conn)
	if err != nil {
		t.Fatal(err)
	}
	batch := &remotepb.Batch{Messages: []*remotepb.Message{{Worker: "known"}, {Worker: "nobody"}, {Worker: "known"}}}
	if err := stream.SendMsg(batch); err != nil {
		t.Fatal(err)
	}
	sum, err := closeBatchStream(stream)
	if err != nil || sum.GetDelivered() != 2 || sum.GetUnknownWorker() != 1 {
		t.Fatalf("summary %v, %v; want 2 delivered and 1 unknown", sum, err)
	}
}

// failingClose is a client whose Close fails.
type failingClose struct{ routedClient }

func (failingClose) Close() error { return errors.New("close failed on purpose") }

// Manager.Close reports the clients' Close errors.
func TestManagerCloseReportsClientErrors(t *testing.T) {
	src := newFake(node("a", "10.0.0.1", 1))
	m, err := remote.NewManager(src, self, remote.NewServer(), remote.WithRefreshInterval(time.Hour),
		remote.WithDialer(func(n cluster.Node) (remote.Client, error) { return failingClose{}, nil }))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err == nil || !strings.Contains(err.Error(), "close failed on purpose") {
		t.Fatalf("Close = %v", err)
	}
}

// outOfRange is a selector that returns an index past the view.
type outOfRange struct{}

func (outOfRange) Select(_ int32, p selector.Peers) (int, error) { return p.Len(), nil }

// A selector's index outside the view is an error, not a panic.
func TestSenderRefusesAnIndexOutsideTheView(t *testing.T) {
	m, err := remote.NewManager(newFake(), self, remote.NewServer(), remote.WithRefreshInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = remote.NewSender(m).Send(context.Background(), "w", 1, nil, outOfRange{})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("index %d", m.Snapshot().Len())) {
		t.Fatalf("err = %v", err)
	}
}

// A peer that is not up yet is waited for: the client keeps trying to open
// its stream, with backoff, and delivers once the peer listens.
func TestWaitsForAPeerThatComesUpLater(t *testing.T) {
	addr := startPeer(t, "127.0.0.1:0", remote.NewServer()) // only to get a free port
	addr.stop()
	srv := remote.NewServer()
	rec := &recorder{}
	_ = srv.Handle("w", rec)
	c := dial(t, addr.node(), remote.WithReconnectBackoff(cluster.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}))
	if err := c.Send(context.Background(), "w", seq(1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // a few failed attempts
	startPeer(t, addr.addr, srv)
	waitCount(t, rec, 1, 5*time.Second)
	if s := statsWhen(t, c, time.Second, func(s remote.ClientStats) bool { return s.Sent > 0 }); s.Failed != 0 || s.Sent != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// Batches that grow past the slots an earlier batch allocated reuse what
// exists and allocate the rest.
func TestGrowingBatches(t *testing.T) {
	p, rec := recordingPeer(t)
	c := dial(t, p.node(), remote.WithFlushDelay(100*time.Millisecond))
	sent := 0
	for _, size := range []int{1, 3, 4, 7, 9} {
		for range size {
			_ = c.Send(context.Background(), "w", seq(sent))
			sent++
		}
		waitCount(t, rec, sent, 2*time.Second)
	}
	if s := statsWhen(t, c, time.Second, func(s remote.ClientStats) bool { return s.Sent == uint64(sent) }); s.Batches != 5 {
		t.Fatalf("stats %+v: want one batch per burst", s)
	}
}
