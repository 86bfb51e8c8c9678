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
	Reconnects uint64 `json:"reconnects"` // streams opened after the first
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
	conn *grpc.ClientConn
	rpc  remotepb.RemoteClient

	queue   chan envelope
	closing chan struct{} // closed by Close: stop accepting, flush
	done    chan struct{} // closed when the run loop has exited
	ctx     context.Context
	cancel  context.CancelFunc

	sendMu    sync.RWMutex // Send holds R while enqueueing; Close takes W to fence them
	closed    bool
	closeOnce sync.Once
	closeErr  error

	sent, dropped, failed, tooLarge, reconnects, batches atomic.Uint64
	connectErr                                           atomic.Pointer[error]
}

// DialPeer returns a client for node. It does not wait for the connection:
// messages queue until the stream is up.
func DialPeer(node cluster.Node, opts ClientOptions) (*PeerClient, error) {
	opts = opts.withDefaults()
	conn, err := grpc.NewClient(node.Address.String(), opts.DialOptions...)
	if err != nil {
		return nil, fmt.Errorf("remote: dialing %s at %s: %w", node.ID, node.Address, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &PeerClient{
		node: node, opts: opts, conn: conn, rpc: remotepb.NewRemoteClient(conn),
		queue: make(chan envelope, opts.QueueSize), closing: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}
	go c.run()
	return c, nil
}

// Node is the peer this client sends to.
func (c *PeerClient) Node() cluster.Node { return c.node }

// Stats returns the client's counters.
func (c *PeerClient) Stats() ClientStats {
	return ClientStats{Sent: c.sent.Load(), Dropped: c.dropped.Load(), Failed: c.failed.Load(), TooLarge: c.tooLarge.Load(), Reconnects: c.reconnects.Load(), Batches: c.batches.Load(), Queued: len(c.queue)}
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
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	if c.closed {
		return ErrClientClosed
	}
	e := envelope{worker, data}
	select {
	case c.queue <- e:
		return nil
	default:
	}
	if c.opts.Full == Drop {
		c.dropped.Add(1)
		return fmt.Errorf("%w (peer %s, %d queued)", ErrQueueFull, c.node.Address, c.opts.QueueSize)
	}
	select {
	case c.queue <- e:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (peer %s): %w", ErrQueueFull, c.node.Address, ctx.Err())
	case <-c.closing:
		return ErrClientClosed
	}
}

// Close stops accepting messages, flushes the queue (for at most
// CloseTimeout), ends the stream and closes the connection.
func (c *PeerClient) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing) // wakes senders blocked on a full queue
		c.sendMu.Lock()  // waits for senders already enqueueing
		c.closed = true
		c.sendMu.Unlock()
		timer := time.NewTimer(c.opts.CloseTimeout)
		select {
		case <-c.done:
		case <-timer.C:
			c.cancel() // abort a stuck write or reconnect
			<-c.done
			c.closeErr = fmt.Errorf("remote: peer %s: flush did not finish within %s", c.node.Address, c.opts.CloseTimeout)
		}
		timer.Stop()
		c.cancel()
		if err := c.conn.Close(); err != nil && c.closeErr == nil {
			c.closeErr = err
		}
	})
	return c.closeErr
}

// run owns the stream: it collects batches from the queue and writes them,
// reopening the stream with backoff after a failure.
func (c *PeerClient) run() {
	defer close(c.done)
	var stream grpc.ClientStreamingClient[remotepb.Batch, remotepb.Summary]
	bo := backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
	batch := &remotepb.Batch{}
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	opened := 0
	for {
		n := c.collect(batch, flush)
		if n == 0 {
			break // closing and the queue is empty
		}
		for stream == nil {
			s, err := c.rpc.Call(c.ctx)
			if err == nil {
				c.connectErr.Store(nil)
				stream = s
				if opened++; opened > 1 {
					c.reconnects.Add(1)
				}
				break
			}
			if c.ctx.Err() != nil {
				c.failed.Add(uint64(n) + uint64(len(c.queue)))
				return
			}
			if c.connectErr.Swap(&err) == nil { // once an outage, not at every retry
				c.opts.Logger.Warn("herd/remote: cannot open a stream to peer; retrying", "peer", c.node.Address.String(), "err", err)
			}
			if !bo.Wait(c.ctx) {
				c.failed.Add(uint64(n) + uint64(len(c.queue)))
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
			if !bo.Wait(c.ctx) {
				c.failed.Add(uint64(len(c.queue)))
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

// collect fills batch with queued messages until it reaches the count or
// byte limit, or FlushDelay passes with the queue empty. It reuses batch's
// message structs, so it allocates only while the batch grows. It returns 0
// when the client is closing and nothing is left.
func (c *PeerClient) collect(batch *remotepb.Batch, flush *time.Timer) int {
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
	// Wait for the first message, or for Close.
	select {
	case e := <-c.queue:
		add(e)
	case <-c.closing:
		select {
		case e := <-c.queue:
			add(e)
		default:
			return 0
		}
	}
	waiting := false
	for n < c.opts.MaxBatchMessages && bytes < c.opts.MaxBatchBytes {
		select {
		case e := <-c.queue:
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
		case e := <-c.queue:
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
