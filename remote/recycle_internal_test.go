package remote

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/herd-go/herd/cluster"
)

// A busy client writes its batches from buffers it has written before,
// instead of allocating new ones, except a buffer that grew for one large
// message, which is let go.
func TestWrittenBatchesAreReused(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer()
	_ = srv.Handle("w", HandlerFunc(func(context.Context, []byte) {}))
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	addr, err := cluster.ParseAddress(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := DialPeer(cluster.Node{ID: "peer", Address: addr}, WithMaxBatchMessages(4), WithMaxBatchBytes(64), WithFlushDelay(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// spares waits for the send loop to have recycled what it wrote.
	spares := func(written uint64) []*batch {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c.mu.Lock()
			kept := append([]*batch(nil), c.spare...)
			c.mu.Unlock()
			if (c.Stats().Batches >= written && len(kept) > 0) || time.Now().After(deadline) {
				return kept
			}
			time.Sleep(time.Millisecond)
		}
	}
	for range 400 {
		if err := c.Send(context.Background(), "w", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	kept := spares(100)
	if len(kept) == 0 || len(kept) > c.opts.QueueSize/c.opts.MaxBatchMessages+1 {
		t.Fatalf("%d written buffers kept for reuse, want 1 to %d", len(kept), c.opts.QueueSize/c.opts.MaxBatchMessages+1)
	}

	if err := c.Send(context.Background(), "w", make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	spares(c.Stats().Batches + 1)
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); time.Sleep(time.Millisecond) {
		for _, b := range spares(0) {
			if cap(b.buf) > 2*c.opts.MaxBatchBytes {
				t.Fatalf("a buffer of %d bytes, grown for one large message, was kept (MaxBatchBytes %d)", cap(b.buf), c.opts.MaxBatchBytes)
			}
		}
	}
}
