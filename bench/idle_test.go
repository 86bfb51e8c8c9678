package bench

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/remote"
)

// footprint returns the live heap and the goroutine count after a GC.
func footprint() (heap uint64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, runtime.NumGoroutine()
}

// TestIdlePeers: what 200 peers cost this process while idle, the peer
// being another process: herd's PeerClient never sent to, and sent one
// message (its stream and send loop then live until IdleTimeout), against
// a raw grpc.ClientConn with an open client stream that sent one message.
func TestIdlePeers(t *testing.T) {
	addr := startTransportPeer(t)
	const peers = 200
	node := cluster.Node{ID: "peer", Address: addr}
	measure := func(open func() func()) (perPeerHeap float64, perPeerG float64) {
		h0, g0 := footprint()
		var closers []func()
		for range peers {
			closers = append(closers, open())
		}
		h1, g1 := footprint()
		for _, c := range closers {
			c()
		}
		return float64(int64(h1)-int64(h0)) / peers, float64(g1-g0) / peers
	}
	herdClient := func(send bool) func() func() {
		return func() func() {
			c, err := remote.DialPeer(node)
			if err != nil {
				t.Fatal(err)
			}
			if send {
				if err := c.Send(context.Background(), "w", make([]byte, payload)); err != nil {
					t.Fatal(err)
				}
				for c.Stats().Sent == 0 {
					runtime.Gosched()
				}
			}
			return func() { _ = c.Close() }
		}
	}
	rawStream := func() func() {
		conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		st, err := conn.NewStream(context.Background(), &grpc.StreamDesc{ClientStreams: true}, "/herd.remote.v1.Remote/Call")
		if err != nil {
			t.Fatal(err)
		}
		msg := &emptypb.Empty{}
		msg.ProtoReflect().SetUnknown(appendMessage(nil, "w", make([]byte, payload)))
		if err := st.SendMsg(msg); err != nil {
			t.Fatal(err)
		}
		return func() { _ = st.CloseSend(); _ = st.RecvMsg(&emptypb.Empty{}); _ = conn.Close() }
	}
	rounds := envInt("HERD_BENCH_ROUNDS", 5)
	type row struct {
		name string
		open func() func()
		heap []float64
		g    []float64
	}
	rows := []*row{
		{name: "herd PeerClient, never sent to", open: herdClient(false)},
		{name: "herd PeerClient, sent one message (within IdleTimeout)", open: herdClient(true)},
		{name: "raw grpc.ClientConn with an open stream, sent one message", open: rawStream},
	}
	for range rounds {
		for _, r := range rows {
			h, g := measure(r.open)
			r.heap, r.g = append(r.heap, h), append(r.g, g)
		}
	}
	tb := newTable(fmt.Sprintf("Idle peers: cost per peer of %d peers in this process (%d rounds, medians)", peers, rounds),
		"", "heap per peer", "goroutines per peer", "heap ÷ raw")
	raw := median(rows[2].heap)
	for _, r := range rows {
		tb.add(r.name, fmt.Sprintf("%.1f KiB", median(r.heap)/1024), fmt.Sprintf("%.1f", median(r.g)), ratio(median(r.heap), raw))
	}
	tb.print()
}
