package zookeeper

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/herd-go/herd/backoff"
)

// Redialling a server that is down starts this soon and backs off to
// redialMax. A refused dial costs one round trip, so probing four times a
// second is cheap, and a server that comes back is reached within redialMax
// instead of go-zookeeper's fixed second.
const (
	redialInitial = 25 * time.Millisecond
	redialMax     = 250 * time.Millisecond
)

// A session handshake gets handshakeInitial to be answered, doubling after
// each unanswered one up to the session timeout. go-zookeeper alone waits ten
// receive timeouts (over a minute with a 10s session): a ZooKeeper server that
// is starting can accept a connection and never answer it, and a client that
// dialled it then would sit out that minute while the server serves others.
const handshakeInitial = 500 * time.Millisecond

// link is one go-zookeeper client and the host ring it dials through.
type link struct {
	*zk.Conn
	ring *hostRing
}

// connect starts a client on cfg's hosts through dialer.
func connect(cfg Config, logger *slog.Logger, dialer zk.Dialer) (*link, <-chan zk.Event, error) {
	ring := newHostRing(dialer, cfg.SessionTimeout)
	conn, events, err := zk.Connect(cfg.hosts(), cfg.SessionTimeout,
		zk.WithLogger(zkLogger{logger}), zk.WithLogInfo(false), zk.WithDialer(ring.dial), zk.WithHostProvider(ring))
	if err != nil {
		ring.stop()
		return nil, nil, err
	}
	return &link{Conn: conn, ring: ring}, events, nil
}

// Close ends the ring's wait first: the client only notices that it is
// closing at the end of a round of its server list.
func (l *link) Close() {
	l.ring.stop()
	l.Conn.Close()
}

// discard closes a client that was never put to use and reads its events
// until the client ends them. Its close request waits up to 1s for an answer
// no one may send, so the close runs beside the reading.
func (l *link) discard(events <-chan zk.Event) {
	go l.Close()
	for range events {
	}
}

// hostRing is go-zookeeper's DNS host provider, with herd's backoff in place
// of the client's pause of one second after each round of the server list.
// The client pauses when Next says a round is complete; the ring waits its
// backoff instead and says so only once stopped, so that the client sees it
// is closing.
//
// The cost: the client fails requests queued while it is disconnected (with
// ErrNoServer) only at the end of a round, so such a request now waits for the
// reconnection. herd checks the session before it queries and bounds Close
// on its own, and a replaced connection's Close fails whatever still waits.
//
// It also dials, so that it can bound each session handshake (see
// handshakeInitial).
type hostRing struct {
	hosts  *zk.DNSHostProvider
	dialer zk.Dialer
	ctx    context.Context
	cancel context.CancelFunc

	// Only the client's connect loop, one goroutine, uses these.
	bo           *backoff.Backoff
	handshake    time.Duration // the next handshake's limit
	maxHandshake time.Duration
	dialed       bool // a dial succeeded and no handshake has since

	refusedSince atomic.Int64 // unix ns of the first failed handshake since the last session; 0 if none
}

func newHostRing(dialer zk.Dialer, sessionTimeout time.Duration) *hostRing {
	ctx, cancel := context.WithCancel(context.Background())
	return &hostRing{hosts: zk.NewDNSHostProvider(), dialer: dialer, ctx: ctx, cancel: cancel,
		bo: backoff.New(redialInitial, redialMax), handshake: handshakeInitial, maxHandshake: max(sessionTimeout, handshakeInitial)}
}

// dial connects through the dialer and bounds the handshake on the new
// connection.
func (r *hostRing) dial(network, address string, timeout time.Duration) (net.Conn, error) {
	conn, err := r.dialer(network, address, timeout)
	if err != nil {
		return nil, err
	}
	r.dialed = true
	return &handshakeConn{Conn: conn, limit: r.handshake}, nil
}

func (r *hostRing) stop() { r.cancel() }

// Init resolves the servers (go-zookeeper's provider).
func (r *hostRing) Init(servers []string) error { return r.hosts.Init(servers) }

// Len is the number of resolved servers.
func (r *hostRing) Len() int { return r.hosts.Len() }

// Next returns the server to dial, after the backoff when a round of the
// list is complete.
func (r *hostRing) Next() (string, bool) {
	if r.dialed { // the last connection's handshake failed: allow more time
		r.handshake = min(2*r.handshake, r.maxHandshake)
		r.dialed = false
		r.refusedSince.CompareAndSwap(0, time.Now().UnixNano())
	}
	server, round := r.hosts.Next()
	if round && !r.bo.Wait(r.ctx) {
		return server, true
	}
	return server, false
}

// Connected resets the backoff after a session handshake.
func (r *hostRing) Connected() {
	r.hosts.Connected()
	r.bo.Reset()
	r.handshake, r.dialed = handshakeInitial, false
	r.refusedSince.Store(0)
}

// refusedFor is how long servers have accepted connections but refused or
// left unanswered every session handshake on them; 0 while none has failed
// since the last session.
func (r *hostRing) refusedFor() time.Duration {
	since := r.refusedSince.Load()
	if since == 0 {
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// handshakeConn caps the first read deadline set on it, the one go-zookeeper
// sets for the session handshake, at limit from then. Later deadlines, the
// client's receive timeouts, pass unchanged.
type handshakeConn struct {
	net.Conn
	limit  time.Duration
	capped atomic.Bool
}

func (c *handshakeConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && c.capped.CompareAndSwap(false, true) {
		if limit := time.Now().Add(c.limit); t.After(limit) {
			t = limit
		}
	}
	return c.Conn.SetReadDeadline(t)
}
