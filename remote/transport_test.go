package remote_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protopack"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/remote/internal/remotepb"
)

// peer is a real gRPC server on loopback with a herd remote.Server mounted.
type peer struct {
	t      testing.TB
	addr   string
	remote *remote.Server
	grpc   *grpc.Server
	done   chan struct{}
}

func startPeer(t testing.TB, addr string, srv *remote.Server) *peer {
	t.Helper()
	var lis net.Listener
	var err error
	for i := 0; i < 50; i++ { // a restarted peer may wait for its old port
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, addr: lis.Addr().String(), remote: srv, grpc: grpc.NewServer(), done: make(chan struct{})}
	srv.Register(p.grpc)
	go func() { defer close(p.done); _ = p.grpc.Serve(lis) }()
	t.Cleanup(p.stop)
	return p
}

func (p *peer) stop() {
	p.grpc.Stop()
	<-p.done
}

func (p *peer) node() cluster.Node {
	a, err := cluster.ParseAddress(p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	return cluster.Node{ID: "peer", Address: a}
}

// recorder collects what a worker received, in order.
type recorder struct {
	mu   sync.Mutex
	got  [][]byte
	gate chan struct{} // when non-nil, each Handle waits for a token
}

func (r *recorder) Handle(_ context.Context, data []byte) {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	r.got = append(r.got, data)
	r.mu.Unlock()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// recordingPeer starts a peer whose worker "w" records what it receives.
func recordingPeer(t testing.TB) (*peer, *recorder) {
	t.Helper()
	srv := remote.NewServer()
	rec := &recorder{}
	_ = srv.Handle("w", rec)
	return startPeer(t, "127.0.0.1:0", srv), rec
}

func waitCount(t *testing.T, r *recorder, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for r.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d within %s", r.count(), n, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// statsWhen polls c's stats until cond holds, or fails after d. A peer can
// record a message before the client's stream write returns and is counted,
// so stats read right after delivery may be one write behind.
func statsWhen(t *testing.T, c *remote.PeerClient, d time.Duration, cond func(remote.ClientStats) bool) remote.ClientStats {
	t.Helper()
	deadline := time.Now().Add(d)
	for s := c.Stats(); ; s = c.Stats() {
		if cond(s) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func seq(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

func dial(t testing.TB, n cluster.Node, opts ...remote.ClientOption) *remote.PeerClient {
	t.Helper()
	c, err := remote.DialPeer(n, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTransportDeliversInOrderAndCloseFlushes(t *testing.T) {
	p, rec := recordingPeer(t)
	c := dial(t, p.node(), remote.WithMaxBatchMessages(7))
	const n = 5000
	for i := 0; i < n; i++ {
		if err := c.Send(context.Background(), "w", seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil { // Close flushes what is still queued
		t.Fatal(err)
	}
	waitCount(t, rec, n, 5*time.Second)
	for i, d := range rec.got {
		if !bytes.Equal(d, seq(i)) {
			t.Fatalf("message %d out of order", i)
		}
	}
	if st := c.Stats(); st.Sent != n || st.Failed != 0 || st.Reconnects != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := c.Send(context.Background(), "w", nil); !errors.Is(err, remote.ErrClientClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if st := p.remote.Stats(); st.Streams != 1 || st.Delivered != n {
		t.Fatalf("server stats %+v: want one long-lived stream", st)
	}
}

func TestUnknownWorkerIsCountedNotFatal(t *testing.T) {
	srv := remote.NewServer()
	rec := &recorder{}
	_ = srv.Handle("known", rec)
	p := startPeer(t, "127.0.0.1:0", srv)
	c := dial(t, p.node())
	_ = c.Send(context.Background(), "unknown", []byte("x"))
	_ = c.Send(context.Background(), "known", []byte("y"))
	waitCount(t, rec, 1, 2*time.Second)
	if st := srv.Stats(); st.UnknownWorker != 1 || st.Delivered != 1 {
		t.Fatalf("server stats %+v", st)
	}
}

func TestOversizedMessageRefused(t *testing.T) {
	p, rec := recordingPeer(t)
	c := dial(t, p.node())
	big := make([]byte, 5<<20)
	if err := c.Send(context.Background(), "w", big); !errors.Is(err, remote.ErrMessageTooLarge) {
		t.Fatalf("5 MiB message: %v", err)
	}
	// Just under the limit still gets through gRPC's default 4 MiB receive limit.
	ok := make([]byte, 4<<20-64<<10-1)
	if err := c.Send(context.Background(), "w", ok); err != nil {
		t.Fatal(err)
	}
	waitCount(t, rec, 1, 5*time.Second)
	if st := c.Stats(); st.TooLarge != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A worker name protobuf could not carry as a string is refused by Send
// and by Handle, with the reason, before it can fail a whole batch.
func TestWorkerNamesMustBeUTF8(t *testing.T) {
	p, _ := recordingPeer(t)
	c := dial(t, p.node())
	if err := c.Send(context.Background(), "w\xff", nil); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("Send to a worker named with invalid UTF-8: %v", err)
	}
	if err := remote.NewServer().Handle("w\xff", remote.HandlerFunc(func(context.Context, []byte) {})); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("Handle of a worker named with invalid UTF-8: %v", err)
	}
}

func TestFullQueuePolicies(t *testing.T) {
	// Nothing listens here, so the queue can only fill.
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	addr, _ := cluster.ParseAddress(lis.Addr().String())
	lis.Close()
	n := cluster.Node{ID: "down", Address: addr}

	t.Run("Drop", func(t *testing.T) {
		c := dial(t, n, remote.WithQueueSize(4), remote.WithMaxBatchMessages(2), remote.WithFullPolicy(remote.Drop), remote.WithCloseTimeout(100*time.Millisecond))
		var dropped int
		// QueueSize counts every message not yet written: 4 fit, plus the
		// one full batch (MaxBatchMessages) a session may take out of the
		// queue, while the Sends run or after, as it fails to connect.
		for i := 0; i < 100; i++ {
			if err := c.Send(context.Background(), "w", seq(i)); errors.Is(err, remote.ErrQueueFull) {
				dropped++
			}
		}
		accepted, queued := 100-dropped, c.Stats().Queued
		if accepted != 4 && accepted != 6 || queued != accepted && queued != accepted-2 || uint64(dropped) != c.Stats().Dropped {
			t.Fatalf("dropped %d of 100 with QueueSize 4, stats %+v; want 4 accepted, or 6 with a batch of 2 taken", dropped, c.Stats())
		}
	})
	t.Run("Block", func(t *testing.T) {
		c := dial(t, n, remote.WithQueueSize(4), remote.WithMaxBatchMessages(2), remote.WithFullPolicy(remote.Block), remote.WithCloseTimeout(100*time.Millisecond))
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			err = c.Send(ctx, "w", seq(i))
			cancel()
		}
		if !errors.Is(err, remote.ErrQueueFull) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrQueueFull and DeadlineExceeded; stats %+v", err, c.Stats())
		}
		// A sender blocked on the full queue is released by Close.
		errc := make(chan error, 1)
		go func() { errc <- c.Send(context.Background(), "w", nil) }()
		time.Sleep(20 * time.Millisecond)
		if err := c.Close(); err == nil {
			t.Log("Close reported no flush timeout (the queue was abandoned quickly)")
		}
		if err := <-errc; !errors.Is(err, remote.ErrClientClosed) {
			t.Fatalf("blocked Send after Close: %v", err)
		}
		if c.Stats().Failed == 0 {
			t.Fatalf("unsent messages at Close not counted: %+v", c.Stats())
		}
	})
}

func TestReconnectsAfterPeerRestart(t *testing.T) {
	p, rec := recordingPeer(t)
	c := dial(t, p.node(), remote.WithFlushDelay(-1))
	_ = c.Send(context.Background(), "w", seq(0))
	waitCount(t, rec, 1, 2*time.Second)

	p.stop()
	p2 := startPeer(t, p.addr, p.remote)
	_ = p2
	// Keep sending until messages arrive through a new stream.
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; rec.count() < 5; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery after restart; stats %+v", c.Stats())
		}
		_ = c.Send(context.Background(), "w", seq(i))
		time.Sleep(10 * time.Millisecond)
	}
	if c.Stats().Reconnects == 0 {
		t.Fatalf("stats %+v: want a reconnect", c.Stats())
	}
}

// The throughput benchmarks send 64-byte messages to one peer on loopback:
// herd's client, a raw grpc-go client stream sending one message per write
// (the floor herd's batching is measured against), and a new stream per
// batch of 256 (what a naive client does).
const payloadSize = 64

func benchPeer(b *testing.B) (*peer, *atomic.Int64) {
	srv := remote.NewServer()
	var got atomic.Int64
	_ = srv.Handle("w", remote.HandlerFunc(func(context.Context, []byte) { got.Add(1) }))
	return startPeer(b, "127.0.0.1:0", srv), &got
}

func waitGot(b *testing.B, got *atomic.Int64, n int64) {
	deadline := time.Now().Add(time.Minute)
	for got.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", got.Load(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func BenchmarkTransportHerd64B(b *testing.B) { benchHerd(b) }

func BenchmarkTransportHerdNoLinger64B(b *testing.B) {
	benchHerd(b, remote.WithFlushDelay(-1))
}

func benchHerd(b *testing.B, opts ...remote.ClientOption) {
	p, got := benchPeer(b)
	c := dial(b, p.node(), opts...)
	data := make([]byte, payloadSize)
	b.SetBytes(payloadSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Send(context.Background(), "w", data); err != nil {
			b.Fatal(err)
		}
	}
	waitGot(b, got, int64(b.N))
}

// TestIdlePeerHoldsNothingAndIdleSessionsEnd: a client never sent to has
// no connection and no goroutine; one that goes IdleTimeout without a
// message ends its stream, connection and goroutines, and the next Send
// starts again, in order after what came before.
func TestIdlePeerHoldsNothingAndIdleSessionsEnd(t *testing.T) {
	p, rec := recordingPeer(t)
	base := runtime.NumGoroutine()
	var clients []*remote.PeerClient
	for range 20 {
		clients = append(clients, dial(t, p.node(), remote.WithIdleTimeout(200*time.Millisecond)))
	}
	time.Sleep(50 * time.Millisecond)
	if extra := runtime.NumGoroutine() - base; extra > 0 {
		t.Fatalf("20 clients never sent to hold %d goroutines, want 0", extra)
	}
	if st := p.remote.Stats(); st.Streams != 0 {
		t.Fatalf("clients never sent to opened %d streams", st.Streams)
	}

	c := clients[0]
	for i := range 100 {
		if err := c.Send(context.Background(), "w", seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, rec, 100, 5*time.Second)
	if runtime.NumGoroutine() <= base {
		t.Fatal("a client in use runs no goroutine: the test measures nothing")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after the idle timeout, want %d", runtime.NumGoroutine(), base)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 100; i < 200; i++ {
		if err := c.Send(context.Background(), "w", seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, rec, 200, 5*time.Second)
	for i, d := range rec.got {
		if !bytes.Equal(d, seq(i)) {
			t.Fatalf("message %d out of order across the idle boundary", i)
		}
	}
	if st := statsWhen(t, c, 5*time.Second, func(s remote.ClientStats) bool { return s.Sent == 200 }); st.Sent != 200 || st.Reconnects != 0 || st.Failed != 0 {
		t.Fatalf("stats %+v: want 200 sent, no reconnect and no loss", st)
	}
	if st := p.remote.Stats(); st.Streams != 2 {
		t.Fatalf("%d streams, want 2 (one per session)", st.Streams)
	}
}

// BenchmarkIdlePeerCost reports the heap and goroutines of 200 peers that
// were dialled and never sent to, for herd's PeerClient and, in the same
// run, for a raw grpc.ClientConn: heap-B/peer and goroutines/peer.
func BenchmarkIdlePeerCost(b *testing.B) {
	const peers = 200
	measure := func(b *testing.B, dial func() func()) {
		for b.Loop() {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			g := runtime.NumGoroutine()
			closers := make([]func(), peers)
			for i := range closers {
				closers[i] = dial()
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/peers, "heap-B/peer")
			b.ReportMetric(float64(runtime.NumGoroutine()-g)/peers, "goroutines/peer")
			for _, c := range closers {
				c()
			}
		}
	}
	node := cluster.Node{ID: "idle", Address: cluster.Address{Host: "127.0.0.1", Port: 1}}
	b.Run("herd", func(b *testing.B) {
		measure(b, func() func() {
			c, err := remote.DialPeer(node)
			if err != nil {
				b.Fatal(err)
			}
			return func() { c.Close() }
		})
	})
	b.Run("grpc.ClientConn", func(b *testing.B) {
		measure(b, func() func() {
			c, err := grpc.NewClient(node.Address.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			return func() { c.Close() }
		})
	})
}

// slowRecorder records what it receives, taking a while over each message,
// and notes whether two calls ever overlapped.
type slowRecorder struct {
	recorder
	busy    atomic.Bool
	overlap atomic.Bool
}

func (r *slowRecorder) Handle(ctx context.Context, data []byte) {
	if r.busy.Swap(true) {
		r.overlap.Store(true)
	}
	time.Sleep(time.Millisecond)
	r.recorder.Handle(ctx, data)
	r.busy.Store(false)
}

// TestOrderHoldsAcrossAnIdleEnd: a session that goes idle while the peer is
// still working through its messages ends its stream before the next
// session opens one, so the peer never handles the two at once.
func TestOrderHoldsAcrossAnIdleEnd(t *testing.T) {
	srv := remote.NewServer()
	rec := &slowRecorder{}
	_ = srv.Handle("w", rec)
	p := startPeer(t, "127.0.0.1:0", srv)
	c := dial(t, p.node(), remote.WithIdleTimeout(10*time.Millisecond), remote.WithFlushDelay(-1))
	if st := c.Stats(); st != (remote.ClientStats{}) {
		t.Fatalf("a client never sent to has stats %+v", st)
	}
	for i := range 100 {
		if err := c.Send(context.Background(), "w", seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	statsWhen(t, c, 5*time.Second, func(s remote.ClientStats) bool { return s.Sent == 100 })
	time.Sleep(30 * time.Millisecond) // the session goes idle while the peer works
	for i := 100; i < 200; i++ {
		if err := c.Send(context.Background(), "w", seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, &rec.recorder, 200, 10*time.Second)
	if rec.overlap.Load() {
		t.Fatal("the peer handled two sessions' messages at once")
	}
	for i, d := range rec.got {
		if !bytes.Equal(d, seq(i)) {
			t.Fatalf("message %d out of order", i)
		}
	}
	if st := p.remote.Stats(); st.Streams != 2 {
		t.Fatalf("%d streams, want 2: the test did not cross an idle end", st.Streams)
	}
}

// Send encodes the message before it returns: a caller that reuses its
// buffer at once does not change what the peer receives.
func TestSendCopiesTheMessage(t *testing.T) {
	p, rec := recordingPeer(t)
	c := dial(t, p.node(), remote.WithFlushDelay(50*time.Millisecond))
	buf := make([]byte, 4)
	for i := range 100 {
		copy(buf, seq(i))
		if err := c.Send(context.Background(), "w", buf); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, rec, 100, 5*time.Second)
	for i, d := range rec.got {
		if !bytes.Equal(d, seq(i)) {
			t.Fatalf("message %d arrived as %v, want %v: the client kept the caller's buffer", i, d, seq(i))
		}
	}
}

// A handler owns its data: it may keep it, and grow it, while later
// messages of the same batch and later batches arrive, and what it kept
// still reads as sent. Messages of a batch share one buffer, so data that
// could grow into the next message's bytes would garble that message.
func TestHandlerOwnsItsData(t *testing.T) {
	srv := remote.NewServer()
	var mu sync.Mutex
	var kept [][]byte
	_ = srv.Handle("w", remote.HandlerFunc(func(_ context.Context, data []byte) {
		mu.Lock()
		kept = append(kept, data)
		mu.Unlock()
		_ = append(data, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	}))
	p := startPeer(t, "127.0.0.1:0", srv)
	c := dial(t, p.node(), remote.WithMaxBatchMessages(64))
	const n = 2000
	for i := range n {
		if err := c.Send(context.Background(), "w", seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.Delivered != n {
		t.Fatalf("server stats %+v, want %d delivered", st, n)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, d := range kept {
		if !bytes.Equal(d, seq(i)) {
			t.Fatalf("kept message %d reads %v, want %v", i, d, seq(i))
		}
	}
}

// Sends racing with Close either succeed, and the message is then sent
// (the peer is up, so it is delivered), or fail with ErrClientClosed: a
// message Send accepted is never dropped without being counted.
func TestCloseRacingSendsLosesNothing(t *testing.T) {
	for round := range 20 {
		p, rec := recordingPeer(t)
		c := dial(t, p.node(), remote.WithMaxBatchMessages(3))
		var accepted atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					err := c.Send(context.Background(), "w", seq(i))
					if errors.Is(err, remote.ErrClientClosed) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					accepted.Add(1)
				}
			})
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		n := int(accepted.Load())
		waitCount(t, rec, n, 5*time.Second)
		if st := c.Stats(); st.Sent != uint64(n) || st.Failed != 0 || st.Queued != 0 {
			t.Fatalf("round %d: %d Sends accepted; stats %+v, delivered %d", round, n, st, rec.count())
		}
		p.stop()
	}
}

// A message that is not a Message ends the stream with InvalidArgument and
// a reason; the messages before it were delivered.
func TestMalformedMessageEndsTheStream(t *testing.T) {
	p, rec := recordingPeer(t)
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	good, err := proto.Marshal(&remotepb.Message{Worker: "w", Data: []byte("ok")})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := batchStream(t.Context(), conn)
	if err != nil {
		t.Fatal(err)
	}
	// The second message claims a 5-byte worker name and ends after 1.
	frame := &remotepb.Frame{}
	frame.ProtoReflect().SetUnknown(protopack.Message{
		protopack.Tag{Number: 1, Type: protopack.BytesType}, protopack.Bytes(good),
		protopack.Tag{Number: 1, Type: protopack.BytesType}, protopack.Bytes([]byte{0x0a, 0x05, 'x'}),
	}.Marshal())
	if err := stream.SendMsg(frame); err != nil {
		t.Fatal(err)
	}
	_, err = closeBatchStream(stream)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "malformed message") {
		t.Fatalf("stream ended with %v, want InvalidArgument naming the malformed message", err)
	}
	waitCount(t, rec, 1, 2*time.Second)
	if st := p.remote.Stats(); st.Delivered != 1 {
		t.Fatalf("server stats %+v, want the good message delivered", st)
	}
}
