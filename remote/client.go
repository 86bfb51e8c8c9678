package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/backoff"
	"github.com/herd-go/herd/remote/internal/remotepb"
)

// Errors a PeerClient's Send returns.
var (
	ErrQueueFull       = errors.New("remote: peer queue is full")
	ErrClientClosed    = errors.New("remote: client is closed")
	ErrMessageTooLarge = errors.New("remote: message too large")
)

// FullPolicy says what Send does when the peer's queue is full.
type FullPolicy int

const (
	// Block waits for room until the Send context ends (then it returns an
	// error wrapping ErrQueueFull and the context's error).
	Block FullPolicy = iota
	// Drop returns ErrQueueFull at once and counts the message as dropped.
	Drop
)

// ClientOptions tune a PeerClient. Zero fields take the defaults shown.
type ClientOptions struct {
	// QueueSize is how many messages wait per peer; 4096. The batch being
	// written holds up to MaxBatchMessages more, so a peer that is down holds
	// at most QueueSize+MaxBatchMessages messages before Full applies.
	QueueSize        int
	MaxBatchMessages int           // messages per stream write; 256
	MaxBatchBytes    int           // payload bytes per stream write; 1 MiB
	FlushDelay       time.Duration // how long a partial batch waits for more; 2ms
	// MaxMessageBytes refuses larger messages in Send; 4 MiB - 64 KiB, so a
	// message alone fits in grpc-go's default 4 MiB receive limit.
	MaxMessageBytes int
	Full            FullPolicy
	// CloseTimeout bounds how long Close flushes the queue; 5s.
	CloseTimeout time.Duration
	// IdleTimeout is how long a client goes without a message before it
	// closes its stream and connection and frees its queue; 5m. The next
	// Send dials again. A client that was never sent to holds no connection
	// and no goroutine at all.
	IdleTimeout time.Duration
	// Backoff bounds reconnect delays; 50ms growing to 5s. A zero field
	// takes its default.
	Backoff cluster.Backoff
	// DialOptions replace the default (plaintext) gRPC dial options.
	DialOptions []grpc.DialOption
	// Logger receives the client's warnings (stream errors, reconnects);
	// nil logs nothing. Losses are counted in Stats either way.
	Logger *slog.Logger
}

func (o ClientOptions) withDefaults() ClientOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.QueueSize, 4096)
	def(&o.MaxBatchMessages, 256)
	def(&o.MaxBatchBytes, 1<<20)
	def(&o.MaxMessageBytes, 4<<20-64<<10)
	if o.FlushDelay < 0 {
		o.FlushDelay = 0
	} else if o.FlushDelay == 0 {
		o.FlushDelay = 2 * time.Millisecond
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 5 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	o.Backoff = o.Backoff.Or(cluster.Backoff{Initial: 50 * time.Millisecond, Max: 5 * time.Second})
	if o.DialOptions == nil {
		o.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ClientStats are a PeerClient's counters.
type ClientStats struct {
	Sent       uint64 `json:"sent"`       // messages written to the stream
	Dropped    uint64 `json:"dropped"`    // refused by Send because the queue was full (Drop policy)
	Failed     uint64 `json:"failed"`     // lost: written to a stream that then broke, or unsent at Close
	TooLarge   uint64 `json:"tooLarge"`   // refused by Send for exceeding MaxMessageBytes
	Reconnects uint64 `json:"reconnects"` // streams reopened after one broke (not a new stream after IdleTimeout)
	Batches    uint64 `json:"batches"`    // stream writes that succeeded; Sent/Batches is the mean batch size
	Queued     int    `json:"queued"`     // messages waiting in the queue now
}

type envelope struct {
	worker string
	data   []byte
}

// PeerClient sends messages to one peer over one long-lived client stream.
// Delivery is best effort, as in SkyWalking. Losses the client can see are
// counted in Stats().Failed: a write to a stream that broke, a reconnect
// abandoned at Close, a queue Close could not flush in time. Messages already
// in gRPC's buffers when a peer dies are lost without the client knowing.
type PeerClient struct {
	node cluster.Node
	opts ClientOptions

	closing chan struct{} // closed by Close: stop accepting, flush

	// mu fences sessions: Send holds R while it enqueues; starting a
	// session, ending an idle one and Close take W.
	mu        sync.RWMutex
	closed    bool
	active    *session      // nil while idle (never sent to, or idle past IdleTimeout)
	ended     chan struct{} // the done of the last session that went idle
	closeOnce sync.Once
	closeErr  error

	sent, dropped, failed, tooLarge, reconnects, batches atomic.Uint64
	connectErr                                           atomic.Pointer[error]
}

// session is a client's connection, queue and send loop, from the first
// Send after idleness until IdleTimeout passes without a message or the
// client closes.
type session struct {
	conn   *grpc.ClientConn
	rpc    remotepb.RemoteClient
	queue  chan envelope
	done   chan struct{} // closed when the send loop has exited
	ctx    context.Context
	cancel context.CancelFunc
}

// DialPeer returns a client for node. It connects nothing yet: the first
// Send dials, and messages queue until the stream is up. The dial options
// are checked here, so a mistake in them is this call's error.
func DialPeer(node cluster.Node, opts ClientOptions) (*PeerClient, error) {
	c := &PeerClient{node: node, opts: opts.withDefaults(), closing: make(chan struct{})}
	conn, err := c.newConn()
	if err != nil {
		return nil, err
	}
	_ = conn.Close() // it never connected
	return c, nil
}

// newConn makes the client's gRPC connection, which connects on first use.
func (c *PeerClient) newConn() (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(c.node.Address.String(), c.opts.DialOptions...)
	if err != nil {
		return nil, fmt.Errorf("remote: dialing %s at %s: %w", c.node.ID, c.node.Address, err)
	}
	return conn, nil
}

// Node is the peer this client sends to.
func (c *PeerClient) Node() cluster.Node { return c.node }

// Stats returns the client's counters.
func (c *PeerClient) Stats() ClientStats {
	queued := 0
	c.mu.RLock()
	if c.active != nil {
		queued = len(c.active.queue)
	}
	c.mu.RUnlock()
	return ClientStats{Sent: c.sent.Load(), Dropped: c.dropped.Load(), Failed: c.failed.Load(), TooLarge: c.tooLarge.Load(),
		Reconnects: c.reconnects.Load(), Batches: c.batches.Load(), Queued: queued}
}

// Err returns why the last attempt to open the stream to the peer failed
// (unreachable, refused by TLS, …), or nil once a stream is open.
func (c *PeerClient) Err() error {
	if p := c.connectErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Send queues data for worker on the peer. The client owns data from here on:
// do not modify it after Send. When the queue is full it blocks until ctx
// ends or drops, as ClientOptions.Full says.
func (c *PeerClient) Send(ctx context.Context, worker string, data []byte) error {
	if size := len(worker) + len(data); size > c.opts.MaxMessageBytes {
		c.tooLarge.Add(1)
		return fmt.Errorf("%w: %d bytes for worker %q exceeds MaxMessageBytes %d", ErrMessageTooLarge, size, worker, c.opts.MaxMessageBytes)
	}
	c.mu.RLock()
	for c.active == nil && !c.closed {
		c.mu.RUnlock()
		if err := c.start(); err != nil {
			return err
		}
		c.mu.RLock()
	}
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClientClosed
	}
	q := c.active.queue
	e := envelope{worker, data}
	select {
	case q <- e:
		return nil
	default:
	}
	if c.opts.Full == Drop {
		c.dropped.Add(1)
		return fmt.Errorf("%w (peer %s, %d queued)", ErrQueueFull, c.node.Address, c.opts.QueueSize)
	}
	select {
	case q <- e:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (peer %s): %w", ErrQueueFull, c.node.Address, ctx.Err())
	case <-c.closing:
		return ErrClientClosed
	}
}

// start begins a session unless one runs or the client is closed.
func (c *PeerClient) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active != nil || c.closed {
		return nil
	}
	conn, err := c.newConn()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{conn: conn, rpc: remotepb.NewRemoteClient(conn), queue: make(chan envelope, c.opts.QueueSize),
		done: make(chan struct{}), ctx: ctx, cancel: cancel}
	c.active = s
	go c.run(s)
	return nil
}

// Close stops accepting messages, flushes the queue (for at most
// CloseTimeout), ends the stream and closes the connection.
func (c *PeerClient) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing) // wakes senders blocked on a full queue
		c.mu.Lock()      // waits for senders already enqueueing
		c.closed = true
		s, ended := c.active, c.ended
		c.mu.Unlock()
		if s == nil { // idle: nothing to flush
			if ended != nil {
				<-ended // its loop is returning
			}
			return
		}
		timer := time.NewTimer(c.opts.CloseTimeout)
		select {
		case <-s.done:
		case <-timer.C:
			s.cancel() // abort a stuck write or reconnect
			<-s.done
			c.closeErr = fmt.Errorf("remote: peer %s: flush did not finish within %s", c.node.Address, c.opts.CloseTimeout)
		}
		timer.Stop()
		if err := s.end(); err != nil && c.closeErr == nil {
			c.closeErr = err
		}
	})
	return c.closeErr
}

// end releases a session whose send loop has exited.
func (s *session) end() error {
	s.cancel()
	return s.conn.Close()
}

// idle ends s if its queue is still empty and the client is open: the
// send loop then exits. Senders enqueue under the read lock, so none is
// halfway through, and none can start the next session before this one's
// stream has ended: the peer handles a client's messages in order, one
// stream after the other.
func (c *PeerClient) idle(s *session, stream grpc.ClientStreamingClient[remotepb.Batch, remotepb.Summary]) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(s.queue) > 0 {
		return false
	}
	if stream != nil {
		abort := time.AfterFunc(c.opts.CloseTimeout, s.cancel) // a peer that does not answer
		_, _ = stream.CloseAndRecv()
		abort.Stop()
	}
	_ = s.end()
	c.active, c.ended = nil, s.done
	return true
}

// run owns the session's stream: it collects batches from the queue and
// writes them, reopening the stream with backoff after a failure, until the
// client closes or the session goes idle.
func (c *PeerClient) run(s *session) {
	defer close(s.done)
	var stream grpc.ClientStreamingClient[remotepb.Batch, remotepb.Summary]
	bo := backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
	batch := &remotepb.Batch{}
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	opened := 0 // streams this session opened: after the first, reconnects
	for {
		n := c.collect(s.queue, batch, flush, idle)
		if n == 0 {
			if isClosed(c.closing) {
				break // closing and the queue is empty
			}
			if c.idle(s, stream) {
				return
			}
			continue // a message came as the idle period ended
		}
		for stream == nil {
			st, err := s.rpc.Call(s.ctx)
			if err == nil {
				c.connectErr.Store(nil)
				stream = st
				if opened++; opened > 1 {
					c.reconnects.Add(1)
				}
				break
			}
			if s.ctx.Err() != nil {
				c.failed.Add(uint64(n) + uint64(len(s.queue)))
				return
			}
			if c.connectErr.Swap(&err) == nil { // once an outage, not at every retry
				c.opts.Logger.Warn("herd/remote: cannot open a stream to peer; retrying", "peer", c.node.Address.String(), "err", err)
			}
			if !bo.Wait(s.ctx) {
				c.failed.Add(uint64(n) + uint64(len(s.queue)))
				return
			}
		}
		if err := stream.Send(batch); err != nil {
			if errors.Is(err, io.EOF) { // the real status comes from the receive side
				_, err = stream.CloseAndRecv()
			}
			c.failed.Add(uint64(n))
			c.opts.Logger.Warn("herd/remote: stream to peer broke; reconnecting", "peer", c.node.Address.String(), "err", err)
			stream = nil
			if !bo.Wait(s.ctx) {
				c.failed.Add(uint64(len(s.queue)))
				return
			}
			continue
		}
		bo.Reset()
		c.sent.Add(uint64(n))
		c.batches.Add(1)
	}
	if stream != nil {
		if _, err := stream.CloseAndRecv(); err != nil {
			c.opts.Logger.Warn("herd/remote: closing stream to peer", "peer", c.node.Address.String(), "err", err)
		}
	}
}

// collect fills batch with messages from queue until it reaches the count
// or byte limit, or FlushDelay passes with the queue empty. It reuses batch's
// message structs, so it allocates only while the batch grows. It returns 0
// when the client is closing and nothing is left, or when IdleTimeout
// passed with nothing to send.
func (c *PeerClient) collect(queue chan envelope, batch *remotepb.Batch, flush, idle *time.Timer) int {
	n, bytes := 0, 0
	msgs := batch.Messages[:cap(batch.Messages)]
	add := func(e envelope) {
		if n < len(msgs) {
			if msgs[n] == nil { // capacity append grew but never filled
				msgs[n] = &remotepb.Message{}
			}
			msgs[n].Worker, msgs[n].Data = e.worker, e.data
		} else {
			msgs = append(msgs, &remotepb.Message{Worker: e.worker, Data: e.data})
		}
		n++
		bytes += len(e.worker) + len(e.data)
	}
	// Wait for the first message, for Close, or for the idle period to end.
	select {
	case e := <-queue:
		add(e)
	default:
		idle.Reset(c.opts.IdleTimeout)
		select {
		case e := <-queue:
			add(e)
		case <-c.closing:
			select {
			case e := <-queue:
				add(e)
			default:
			}
		case <-idle.C:
		}
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		if n == 0 {
			return 0
		}
	}
	waiting := false
	for n < c.opts.MaxBatchMessages && bytes < c.opts.MaxBatchBytes {
		select {
		case e := <-queue:
			add(e)
			continue
		default:
		}
		if c.opts.FlushDelay == 0 || isClosed(c.closing) {
			break
		}
		if !waiting {
			flush.Reset(c.opts.FlushDelay)
			waiting = true
		}
		select {
		case e := <-queue:
			add(e)
			continue
		case <-flush.C:
			waiting = false
		case <-c.closing:
		}
		break
	}
	if waiting && !flush.Stop() {
		select {
		case <-flush.C:
		default:
		}
	}
	// Drop references to payloads sent in earlier, larger batches.
	for _, m := range msgs[n:] {
		if m != nil {
			m.Worker, m.Data = "", nil
		}
	}
	batch.Messages = msgs[:n]
	return n
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
