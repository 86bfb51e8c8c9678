package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/remote"
)

// TestMain runs the receiving side of the transport comparison when the
// test binary is started as its own child process.
func TestMain(m *testing.M) {
	if os.Getenv("HERD_BENCH_CHILD") == "transport" {
		serveTransport()
		return
	}
	os.Exit(m.Run())
}

// serveTransport serves a herd remote.Server on loopback, prints its
// address, and exits when its standard input closes.
func serveTransport() {
	srv := remote.NewServer()
	var got atomic.Int64
	_ = srv.Handle("w", remote.HandlerFunc(func(context.Context, []byte) { got.Add(1) }))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var opts []grpc.ServerOption
	if w := envInt("HERD_BENCH_WINDOW", 0); w > 0 {
		opts = append(opts, grpc.InitialWindowSize(int32(w)), grpc.InitialConnWindowSize(int32(w)))
	}
	g := grpc.NewServer(opts...)
	srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	if path := os.Getenv("HERD_BENCH_PEER_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	fmt.Println(lis.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	g.Stop()
}

// startTransportPeer starts the receiving process and returns its address.
func startTransportPeer(t *testing.T) cluster.Address {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HERD_BENCH_CHILD=transport")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("transport peer: %v", err)
	}
	addr, err := cluster.ParseAddress(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

const payload = 64

// herdTransport sends n messages through a PeerClient and returns the
// rate at which they were delivered (Close returns once the peer has
// handled every message of the stream).
func herdTransport(t *testing.T, addr cluster.Address, n int) float64 {
	c, err := remote.DialPeer(cluster.Node{ID: "peer", Address: addr}, remote.WithMaxBatchMessages(envInt("HERD_BENCH_BATCH", 0)))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, payload)
	ctx := context.Background()
	start := time.Now()
	for range n {
		if err := c.Send(ctx, "w", data); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if st := c.Stats(); st.Sent != uint64(n) {
		t.Fatalf("herd sent %d of %d", st.Sent, n)
	}
	return float64(n) / el.Seconds()
}

// skyWalkingPattern is SkyWalking's remote client (GRPCRemoteClient's
// consumer) on raw grpc-go: for every batch of 256 messages a new client
// stream, one gRPC message per message (onNext), then close the sending
// side (onCompleted) without waiting for the answer, with at most 10
// streams open at once (createStreamObserver's limit). Each message is a
// Batch of one, encoded with protowire into one reused message, which
// costs less than the generated code SkyWalking uses.
func skyWalkingPattern(t *testing.T, conn *grpc.ClientConn, n int) float64 {
	const batch, maxOpen = 256, 10
	data := make([]byte, payload)
	var buf []byte
	msg := &emptypb.Empty{}
	desc := &grpc.StreamDesc{ClientStreams: true}
	ctx := context.Background()
	open := make(chan struct{}, maxOpen)
	answered := make(chan error, n/batch+1)
	streams := 0
	start := time.Now()
	for sent := 0; sent < n; sent += batch {
		open <- struct{}{}
		st, err := conn.NewStream(ctx, desc, "/herd.remote.v1.Remote/Call")
		if err != nil {
			t.Fatal(err)
		}
		for range min(batch, n-sent) {
			buf = appendMessage(buf[:0], "w", data)
			msg.ProtoReflect().SetUnknown(buf)
			if err := st.SendMsg(msg); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CloseSend(); err != nil {
			t.Fatal(err)
		}
		streams++
		go func() {
			answered <- st.RecvMsg(&emptypb.Empty{})
			<-open
		}()
	}
	for range streams {
		if err := <-answered; err != nil {
			t.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// streamPerBatch is a stronger variant of SkyWalking's pattern: a new
// client stream for every batch of 256 messages, the whole batch in one
// gRPC message, closed and answered before the next.
func streamPerBatch(t *testing.T, conn *grpc.ClientConn, n int) float64 {
	const batch = 256
	data := make([]byte, payload)
	var buf []byte
	desc := &grpc.StreamDesc{ClientStreams: true}
	ctx := context.Background()
	start := time.Now()
	for sent := 0; sent < n; sent += batch {
		buf = buf[:0]
		for range min(batch, n-sent) {
			buf = appendMessage(buf, "w", data)
		}
		msg := &emptypb.Empty{}
		msg.ProtoReflect().SetUnknown(buf)
		st, err := conn.NewStream(ctx, desc, "/herd.remote.v1.Remote/Call")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SendMsg(msg); err != nil {
			t.Fatal(err)
		}
		if err := st.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if err := st.RecvMsg(&emptypb.Empty{}); err != nil {
			t.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// appendMessage appends one Batch.messages entry: Message{worker, data}.
func appendMessage(b []byte, worker string, data []byte) []byte {
	size := 1 + protowire.SizeBytes(len(worker)) + 1 + protowire.SizeBytes(len(data))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, worker)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, data)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestTransport: 64-byte messages from this process to another over
// loopback, herd's PeerClient against a new stream per batch, alternated.
func TestTransport(t *testing.T) {
	addr := startTransportPeer(t)
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rounds := envInt("HERD_BENCH_ROUNDS", 5)
	n := envInt("HERD_BENCH_TRANSPORT_MESSAGES", 2_000_000)
	herdTransport(t, addr, n/10) // warm both sides up
	streamPerBatch(t, conn, n/10)
	skyWalkingPattern(t, conn, n/10)
	var herd, base, sky []float64
	for range rounds {
		herd = append(herd, herdTransport(t, addr, n))
		base = append(base, streamPerBatch(t, conn, n/4))
		sky = append(sky, skyWalkingPattern(t, conn, n/4))
	}
	tb := newTable(fmt.Sprintf("Transport: 64-byte messages to a peer in another process (%d rounds, medians)", rounds),
		"", "msg/s", "herd ÷ this")
	h := median(herd)
	tb.add("herd PeerClient", fmt.Sprintf("%.2f M", h/1e6), "1.00×")
	tb.add("SkyWalking's pattern: a new stream per batch of 256, a gRPC message each, ≤ 10 streams open", fmt.Sprintf("%.2f M", median(sky)/1e6), ratio(h, median(sky)))
	tb.add("a new stream per batch of 256, the batch in one gRPC message, answered before the next", fmt.Sprintf("%.2f M", median(base)/1e6), ratio(h, median(base)))
	tb.print()
	t.Logf("herd rounds %.0f; SkyWalking's pattern rounds %.0f; stream per batch rounds %.0f", herd, sky, base)
}
