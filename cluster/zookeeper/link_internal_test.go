package zookeeper

import (
	"net"
	"slices"
	"testing"
	"time"
)

// The ring stands in for go-zookeeper's pause of a second after each round of
// the server list: it never reports a round (the client would pause) until
// it is stopped, when it must, so that the client notices it is closing.
func TestHostRingWaitsItsOwnBackoffAndReportsRoundsOnlyOnceStopped(t *testing.T) {
	r := newHostRing(net.DialTimeout, 10*time.Second)
	if err := r.Init([]string{"127.0.0.1:2181"}); err != nil {
		t.Fatal(err)
	}
	if _, round := r.Next(); round {
		t.Fatal("the first Next reported a completed round")
	}
	for i := range 6 { // past the backoff's cap
		start := time.Now()
		if _, round := r.Next(); round {
			t.Fatalf("Next %d reported a round: the client would pause a second", i)
		}
		if waited := time.Since(start); waited > 4*redialMax {
			t.Fatalf("Next %d waited %s; the backoff is capped at %s", i, waited, redialMax)
		}
	}
	r.stop()
	if _, round := r.Next(); !round {
		t.Fatal("a stopped ring did not report the round: the client would never see that it is closing")
	}
}

// Each handshake that fails gives the next one twice the time, up to the
// session timeout; a session resets it.
func TestHandshakeLimitGrowsOnlyAfterAnsweredDials(t *testing.T) {
	r, lis := listeningRing(t, 3*time.Second)
	var want []time.Duration
	var got []time.Duration
	for _, w := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		r.Next()
		conn, err := r.dial("tcp", lis.Addr().String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got, want = append(got, conn.(*handshakeConn).limit), append(want, w)
		conn.Close()
	}
	if !slices.Equal(got, want) {
		t.Fatalf("handshake limits %v, want %v", got, want)
	}
	// A refused dial is not a failed handshake.
	r.Connected()
	r.dialer = func(string, string, time.Duration) (net.Conn, error) { return nil, net.ErrClosed }
	r.Next()
	_, _ = r.dial("tcp", "x", time.Second)
	r.Next()
	if r.handshake != handshakeInitial {
		t.Fatalf("after a session and a refused dial the limit is %s, want %s", r.handshake, handshakeInitial)
	}
}

// Only the first read deadline, the handshake's, is capped.
func TestHandshakeConnCapsOnlyTheFirstDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := &handshakeConn{Conn: a, limit: 50 * time.Millisecond}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("the handshake read was not cut short: %v after %s", err, time.Since(start))
	}
	if err := c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, _ = c.Read(make([]byte, 1))
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Fatalf("a later deadline was capped too: the read returned after %s", waited)
	}
}

// refusedFor counts from the first handshake that failed on a connection the
// server took, not from refused dials, and a session resets it.
func TestRefusedForCountsFailedHandshakesOnly(t *testing.T) {
	r, lis := listeningRing(t, 10*time.Second)
	refuse := r.dialer
	r.dialer = func(string, string, time.Duration) (net.Conn, error) { return nil, net.ErrClosed }
	r.Next()
	_, _ = r.dial("tcp", "x", time.Second)
	r.Next()
	if d := r.refusedFor(); d != 0 {
		t.Fatalf("refusedFor = %s after a refused dial, want 0", d)
	}
	r.dialer = refuse
	conn, err := r.dial("tcp", lis.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	r.Next() // the handshake on conn failed
	time.Sleep(20 * time.Millisecond)
	if d := r.refusedFor(); d < 20*time.Millisecond {
		t.Fatalf("refusedFor = %s 20ms after a failed handshake", d)
	}
	r.Connected()
	if d := r.refusedFor(); d != 0 {
		t.Fatalf("refusedFor = %s after a session, want 0", d)
	}
}

// listeningRing is a host ring over one loopback listener that takes
// connections and never answers on them.
func listeningRing(t *testing.T, sessionTimeout time.Duration) (*hostRing, net.Listener) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	r := newHostRing(net.DialTimeout, sessionTimeout)
	if err := r.Init([]string{lis.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	return r, lis
}
