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

	"github.com/herd-go/herd/backoff"
	"github.com/herd-go/herd/cluster"
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

// ClientOption tunes a PeerClient: DialPeer takes them, and a Manager
// gives those of WithClientOptions to every client it dials. Without any,
// every default shown applies.
type ClientOption func(*clientOptions)

// WithQueueSize sets how many messages wait per peer; 4096. The batch being
// written holds up to the batch's message limit more, so a peer that is
// down holds at most that many more before the FullPolicy applies.
func WithQueueSize(n int) ClientOption { return func(o *clientOptions) { o.QueueSize = n } }

// WithMaxBatchMessages sets how many messages one stream write carries; 256.
func WithMaxBatchMessages(n int) ClientOption {
	return func(o *clientOptions) { o.MaxBatchMessages = n }
}

// WithMaxBatchBytes sets how many payload bytes one stream write carries; 1 MiB.
func WithMaxBatchBytes(n int) ClientOption { return func(o *clientOptions) { o.MaxBatchBytes = n } }

// WithFlushDelay sets how long a partial batch waits for more; 2ms, and a
// negative delay writes each message at once.
func WithFlushDelay(d time.Duration) ClientOption { return func(o *clientOptions) { o.FlushDelay = d } }

// WithMaxMessageBytes refuses larger messages in Send; 4 MiB - 64 KiB, so
// a message alone fits in grpc-go's default 4 MiB receive limit.
func WithMaxMessageBytes(n int) ClientOption {
	return func(o *clientOptions) { o.MaxMessageBytes = n }
}

// WithFullPolicy says what Send does when the queue is full; Block.
func WithFullPolicy(p FullPolicy) ClientOption { return func(o *clientOptions) { o.Full = p } }

// WithCloseTimeout bounds how long Close flushes the queue; 5s.
func WithCloseTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) { o.CloseTimeout = d }
}

// WithIdleTimeout sets how long a client goes without a message before it
// closes its stream and connection and frees its queue; 5m. The next Send
// dials again. A client that was never sent to holds no connection and no
// goroutine at all.
func WithIdleTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) { o.IdleTimeout = d }
}

// WithReconnectBackoff bounds reconnect delays; 50ms growing to 5s. A zero
// field takes its default.
func WithReconnectBackoff(b cluster.Backoff) ClientOption {
	return func(o *clientOptions) { o.Backoff = b }
}

// WithDialOptions replace the default (plaintext) gRPC dial options, for
// example with peertls's credentials.
func WithDialOptions(opts ...grpc.DialOption) ClientOption {
	return func(o *clientOptions) { o.DialOptions = opts }
}

// WithClientLogger sends the client's warnings (stream errors, reconnects)
// to l; a Manager's clients log to the Manager's logger by default, and a
// client dialled alone logs nothing. Losses are counted in Stats either way.
func WithClientLogger(l *slog.Logger) ClientOption { return func(o *clientOptions) { o.Logger = l } }

// clientOptions are a PeerClient's settings, after its options.
type clientOptions struct {
	QueueSize        int
	MaxBatchMessages int
	MaxBatchBytes    int
	FlushDelay       time.Duration
	MaxMessageBytes  int
	Full             FullPolicy
	CloseTimeout     time.Duration
	IdleTimeout      time.Duration
	Backoff          cluster.Backoff
	DialOptions      []grpc.DialOption
	Logger           *slog.Logger
}

func newClientOptions(opts []ClientOption) clientOptions {
	var o clientOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o.withDefaults()
}

func (o clientOptions) withDefaults() clientOptions {
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

// PeerClient sends messages to one peer over one long-lived client stream.
// Delivery is best effort, as in SkyWalking. Losses the client can see are
// counted in Stats().Failed: a write to a stream that broke, a reconnect
// abandoned at Close, a queue Close could not flush in time. Messages already
// in gRPC's buffers when a peer dies are lost without the client knowing.
//
// Send encodes each message into the batch being filled, under one mutex,
// so the send loop finds batches ready to write and the caller's buffer is
// free again when Send returns; the loop writes one batch while Sends fill
// the next.
type PeerClient struct {
	node cluster.Node
	opts clientOptions

	closing chan struct{} // closed by Close: stop accepting, flush

	// mu guards the queue and the session: Send enqueues under it; the
	// send loop takes batches, and starting a session, ending an idle one
	// and Close change the session, under it.
	mu      sync.Mutex
	closed  bool
	active  *session      // nil while idle (never sent to, or idle past IdleTimeout)
	ended   chan struct{} // the done of the last session that went idle
	batches []*batch      // queued, oldest first; only the last is still filling
	spare   []*batch      // written batches kept for reuse while the session lives
	queued  int           // messages in batches
	room    chan struct{} // closed when a full queue gets room; nil while no Send waits
	wake    chan struct{} // capacity 1: tells the send loop to look at the queue

	closeOnce sync.Once
	closeErr  error

	sent, dropped, failed, tooLarge, reconnects, written atomic.Uint64
	connectErr                                           atomic.Pointer[error]
}

// batch is one stream write being filled or waiting: a remotepb.Batch's
// encoding (see frame.go).
type batch struct {
	buf      []byte
	messages int
	bytes    int // worker and data bytes, as MaxBatchBytes counts them
}

func (b *batch) full(o *clientOptions) bool {
	return b.messages >= o.MaxBatchMessages || b.bytes >= o.MaxBatchBytes
}

// session is a client's connection and send loop, from the first Send
// after idleness until IdleTimeout passes without a message or the client
// closes.
type session struct {
	conn   *grpc.ClientConn
	rpc    remotepb.RemoteClient
	after  chan struct{} // the previous session's done: its stream ends before this one's opens
	done   chan struct{} // closed when the send loop has exited
	ctx    context.Context
	cancel context.CancelFunc
}

// DialPeer returns a client for node. It connects nothing yet: the first
// Send dials, and messages queue until the stream is up. The dial options
// are checked here, so a mistake in them is this call's error.
func DialPeer(node cluster.Node, opts ...ClientOption) (*PeerClient, error) {
	c := &PeerClient{node: node, opts: newClientOptions(opts), closing: make(chan struct{}), wake: make(chan struct{}, 1)}
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
	c.mu.Lock()
	queued := c.queued
	c.mu.Unlock()
	return ClientStats{Sent: c.sent.Load(), Dropped: c.dropped.Load(), Failed: c.failed.Load(), TooLarge: c.tooLarge.Load(),
		Reconnects: c.reconnects.Load(), Batches: c.written.Load(), Queued: queued}
}

// Err returns why the last attempt to open the stream to the peer failed
// (unreachable, refused by TLS, …), or nil once a stream is open.
func (c *PeerClient) Err() error {
	if p := c.connectErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Send queues data for worker on the peer. The message is encoded into
// the client's queue before Send returns, so the caller may reuse data at
// once. When the queue is full it blocks until ctx ends or drops, as
// WithFullPolicy says.
func (c *PeerClient) Send(ctx context.Context, worker string, data []byte) error {
	if size := len(worker) + len(data); size > c.opts.MaxMessageBytes {
		c.tooLarge.Add(1)
		return fmt.Errorf("%w: %d bytes for worker %q exceeds MaxMessageBytes %d", ErrMessageTooLarge, size, worker, c.opts.MaxMessageBytes)
	}
	if err := checkWorker(worker); err != nil {
		return err
	}
	c.mu.Lock()
	for !c.closed && c.queued >= c.opts.QueueSize {
		if c.opts.Full == Drop {
			c.mu.Unlock()
			c.dropped.Add(1)
			return fmt.Errorf("%w (peer %s, %d queued)", ErrQueueFull, c.node.Address, c.opts.QueueSize)
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return fmt.Errorf("%w (peer %s): %w", ErrQueueFull, c.node.Address, ctx.Err())
		case <-c.closing:
			return ErrClientClosed
		}
		c.mu.Lock()
	}
	if c.closed {
		c.mu.Unlock()
		return ErrClientClosed
	}
	if c.active == nil {
		if err := c.startLocked(); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	// The send loop is told of the first message, which starts its wait
	// for more, and of each batch that fills, which ends the wait.
	b := c.fillingLocked()
	b.buf = appendMessage(b.buf, worker, data)
	b.messages++
	b.bytes += len(worker) + len(data)
	c.queued++
	tell := c.queued == 1 || b.full(&c.opts)
	c.mu.Unlock()
	if tell {
		c.notify()
	}
	return nil
}

// fillingLocked returns the batch Sends append to, starting a new one when
// the last is full.
func (c *PeerClient) fillingLocked() *batch {
	if n := len(c.batches); n > 0 && !c.batches[n-1].full(&c.opts) {
		return c.batches[n-1]
	}
	var b *batch
	if n := len(c.spare); n > 0 {
		b, c.spare = c.spare[n-1], c.spare[:n-1]
	} else {
		b = &batch{}
	}
	c.batches = append(c.batches, b)
	return b
}

func (c *PeerClient) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// startLocked begins a session. Its send loop opens a stream only once the
// previous session's stream has ended, so the peer handles a client's
// messages in order, one stream after the other.
func (c *PeerClient) startLocked() error {
	conn, err := c.newConn()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{conn: conn, rpc: remotepb.NewRemoteClient(conn), after: c.ended,
		done: make(chan struct{}), ctx: ctx, cancel: cancel}
	c.active = s
	go c.run(s)
	return nil
}

// Close stops accepting messages, flushes the queue (for at most
// CloseTimeout), ends the stream and closes the connection.
func (c *PeerClient) Close() error {
	c.closeOnce.Do(func() {
		// Marked closed under the lock, so no Send enqueues after the send
		// loop has seen the queue empty and closed; then the channel wakes
		// Sends blocked on a full queue, and the send loop.
		c.mu.Lock()
		c.closed = true
		s, ended := c.active, c.ended
		c.mu.Unlock()
		close(c.closing)
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

// idle ends s if the queue is still empty and the client is open: the send
// loop then exits, after ending its stream. The next Send starts a session
// that waits for this one's done before it opens a stream.
func (c *PeerClient) idle(s *session, stream grpc.ClientStreamingClient[remotepb.Frame, remotepb.Summary]) bool {
	c.mu.Lock()
	if c.closed || c.queued > 0 {
		c.mu.Unlock()
		return false
	}
	c.active, c.ended = nil, s.done
	c.batches, c.spare = nil, nil // an idle client keeps no buffers
	c.mu.Unlock()
	if stream != nil {
		abort := time.AfterFunc(c.opts.CloseTimeout, s.cancel) // a peer that does not answer
		_, _ = stream.CloseAndRecv()
		abort.Stop()
	}
	_ = s.end()
	return true
}

// abandon counts inFlight (a batch the loop had taken) and every queued
// message as failed and empties the queue: the session that would have
// written them is gone.
func (c *PeerClient) abandon(inFlight int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed.Add(uint64(inFlight + c.queued))
	c.batches, c.queued = nil, 0
	c.freeRoomLocked()
}

func (c *PeerClient) freeRoomLocked() {
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
}

// run owns the session's stream: it takes batches from the queue and
// writes them, reopening the stream with backoff after a failure, until the
// client closes or the session goes idle.
func (c *PeerClient) run(s *session) {
	defer close(s.done)
	if s.after != nil {
		<-s.after
	}
	var stream grpc.ClientStreamingClient[remotepb.Frame, remotepb.Summary]
	bo := backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
	frame := &remotepb.Frame{}
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	opened := 0 // streams this session opened: after the first, reconnects
	for {
		b, closing := c.take(linger, idle)
		if b == nil {
			if closing {
				break // the queue is flushed
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
				c.abandon(b.messages)
				return
			}
			if c.connectErr.Swap(&err) == nil { // once an outage, not at every retry
				c.opts.Logger.Warn("herd/remote: cannot open a stream to peer; retrying", "peer", c.node.Address.String(), "err", err)
			}
			if !bo.Wait(s.ctx) {
				c.abandon(b.messages)
				return
			}
		}
		frame.ProtoReflect().SetUnknown(b.buf)
		err := stream.Send(frame)
		frame.ProtoReflect().SetUnknown(nil)
		if err != nil {
			if errors.Is(err, io.EOF) { // the real status comes from the receive side
				_, err = stream.CloseAndRecv()
			}
			c.failed.Add(uint64(b.messages))
			c.recycle(b)
			c.opts.Logger.Warn("herd/remote: stream to peer broke; reconnecting", "peer", c.node.Address.String(), "err", err)
			stream = nil
			if !bo.Wait(s.ctx) {
				c.abandon(0)
				return
			}
			continue
		}
		bo.Reset()
		c.sent.Add(uint64(b.messages))
		c.written.Add(1)
		c.recycle(b)
	}
	if stream != nil {
		if _, err := stream.CloseAndRecv(); err != nil {
			c.opts.Logger.Warn("herd/remote: closing stream to peer", "peer", c.node.Address.String(), "err", err)
		}
	}
}

// recycle keeps a written batch's buffer for a batch to fill, unless it
// grew past twice the batch limit for one large message. A full queue is
// QueueSize/MaxBatchMessages batches and one filling: that many are kept,
// so a busy client stops allocating buffers.
func (c *PeerClient) recycle(b *batch) {
	if cap(b.buf) > 2*c.opts.MaxBatchBytes {
		return
	}
	b.buf, b.messages, b.bytes = b.buf[:0], 0, 0
	c.mu.Lock()
	if c.active != nil && len(c.spare) <= c.opts.QueueSize/c.opts.MaxBatchMessages {
		c.spare = append(c.spare, b)
	}
	c.mu.Unlock()
}

// take returns the oldest batch once it is ready: full, or FlushDelay after
// the loop first found it filling, or at once when FlushDelay is zero or the
// client is closing. It returns nil when the client is closing and the
// queue is empty (closing true), or when IdleTimeout passed with nothing
// queued (closing false).
func (c *PeerClient) take(linger, idle *time.Timer) (b *batch, closing bool) {
	lingering, expired := false, false
	defer func() {
		if lingering {
			linger.Stop()
		}
	}()
	for {
		c.mu.Lock()
		closing = c.closed
		if len(c.batches) > 0 {
			b = c.batches[0]
			if len(c.batches) > 1 || b.full(&c.opts) || c.opts.FlushDelay == 0 || closing || expired {
				c.batches[0] = nil
				c.batches = c.batches[1:]
				c.queued -= b.messages
				c.freeRoomLocked()
				c.mu.Unlock()
				return b, closing
			}
			c.mu.Unlock()
			if !lingering {
				linger.Reset(c.opts.FlushDelay)
				lingering = true
			}
			select {
			case <-c.wake:
			case <-linger.C:
				lingering, expired = false, true
			case <-c.closing:
			}
			continue
		}
		c.mu.Unlock()
		if closing {
			return nil, true
		}
		idle.Reset(c.opts.IdleTimeout)
		select {
		case <-c.wake:
			idle.Stop()
		case <-c.closing:
			idle.Stop()
		case <-idle.C:
			return nil, false
		}
	}
}
