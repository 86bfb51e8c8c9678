package remote_test

// Baselines for BenchmarkTransportHerd64B, written against the generated
// stubs directly so they measure grpc-go alone.

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/remote/internal/remotepb"
)

func baselinePeer(b *testing.B) (*grpc.ClientConn, *atomic.Int64) {
	srv := remote.NewServer()
	var got atomic.Int64
	_ = srv.Handle("w", remote.HandlerFunc(func(context.Context, []byte) { got.Add(1) }))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(); g.Stop(); <-done })
	return conn, &got
}

func waitDelivered(b *testing.B, got *atomic.Int64, n int64) {
	deadline := time.Now().Add(time.Minute)
	for got.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", got.Load(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func BenchmarkTransportRawStreamOnePerWrite64B(b *testing.B) {
	conn, got := baselinePeer(b)
	stream, err := batchStream(context.Background(), conn)
	if err != nil {
		b.Fatal(err)
	}
	msg := &remotepb.Batch{Messages: []*remotepb.Message{{Worker: "w", Data: make([]byte, 64)}}}
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := stream.SendMsg(msg); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := closeBatchStream(stream); err != nil {
		b.Fatal(err)
	}
	waitDelivered(b, got, int64(b.N))
}

func BenchmarkTransportNewStreamPerBatch64B(b *testing.B) {
	conn, got := baselinePeer(b)
	const batch = 256
	msgs := make([]*remotepb.Message, batch)
	for i := range msgs {
		msgs[i] = &remotepb.Message{Worker: "w", Data: make([]byte, 64)}
	}
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += batch {
		n := min(batch, b.N-sent)
		stream, err := batchStream(context.Background(), conn)
		if err != nil {
			b.Fatal(err)
		}
		if err := stream.SendMsg(&remotepb.Batch{Messages: msgs[:n]}); err != nil {
			b.Fatal(err)
		}
		if _, err := closeBatchStream(stream); err != nil {
			b.Fatal(err)
		}
	}
	waitDelivered(b, got, int64(b.N))
}

// batchStream opens the Remote service's Call stream for a sender that
// writes generated remotepb.Batch messages, as a peer built from the
// .proto file would (herd's own client writes frames).
func batchStream(ctx context.Context, conn *grpc.ClientConn) (grpc.ClientStream, error) {
	return conn.NewStream(ctx, &remotepb.Remote_ServiceDesc.Streams[0], remotepb.Remote_Call_FullMethodName)
}

// closeBatchStream ends a batchStream and returns the server's summary.
func closeBatchStream(stream grpc.ClientStream) (*remotepb.Summary, error) {
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	var sum remotepb.Summary
	return &sum, stream.RecvMsg(&sum)
}
