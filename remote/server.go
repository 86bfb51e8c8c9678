package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/herd-go/herd/remote/internal/remotepb"
)

// Handler processes the data sent to one worker. Calls for messages from the
// same peer are made one at a time, in the order the peer sent them; calls
// for different peers run concurrently.
//
// The handler owns data: it may keep and modify it, and nothing else
// writes to it. Messages that arrived in one batch share one allocation
// (at most the sender's MaxBatchMessages messages or MaxBatchBytes), which
// stays in memory while any of their data is kept; a handler that keeps a
// few small messages for long and drops the rest should copy what it keeps.
type Handler interface {
	Handle(ctx context.Context, data []byte)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, data []byte)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, data []byte) { f(ctx, data) }

// ErrUnknownWorker is returned for a message whose worker has no handler.
var ErrUnknownWorker = errors.New("remote: no handler for worker")

// ServerStats are the server's counters.
type ServerStats struct {
	Delivered     uint64 `json:"delivered"`     // messages handed to a handler, from peers or self
	UnknownWorker uint64 `json:"unknownWorker"` // messages dropped because no handler had their worker name
	Streams       uint64 `json:"streams"`       // peer streams accepted
}

// Server dispatches incoming messages to handlers by worker name.
type Server struct {
	mu       sync.RWMutex
	handlers map[string]Handler

	delivered, unknown, streams atomic.Uint64

	health atomic.Pointer[health.Server] // set by RegisterHealth
}

// NewServer returns a server with no handlers.
func NewServer() *Server { return &Server{handlers: map[string]Handler{}} }

// Handle registers h for worker. Registering a name twice is an error.
func (s *Server) Handle(worker string, h Handler) error {
	if worker == "" || h == nil {
		return errors.New("remote: Handle needs a worker name and a handler")
	}
	if err := checkWorker(worker); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.handlers[worker]; dup {
		return fmt.Errorf("remote: worker %q already has a handler", worker)
	}
	s.handlers[worker] = h
	return nil
}

// Register mounts the server's gRPC service on g, which the caller starts
// and stops. Mount it before g.Serve.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	remotepb.RegisterRemoteServer(g, &service{s: s})
}

// HealthService is the name under which RegisterHealth reports the
// transport's status, besides the empty name that stands for the whole node.
const HealthService = "herd.remote.v1.Remote"

// RegisterHealth mounts the standard grpc.health.v1 service on g, so that
// Kubernetes gRPC probes, Consul gRPC checks and grpc-go's client-side
// health checking see the node. The status (for "" and HealthService)
// follows the node's registration as the Manager built over this server
// sees it: NOT_SERVING until the backend lists self, SERVING while it does,
// NOT_SERVING again if the backend loses self, and for good once the
// Manager is closed. Call it at most once, before g.Serve.
func (s *Server) RegisterHealth(g grpc.ServiceRegistrar) {
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	h.SetServingStatus(HealthService, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(g, h)
	s.health.Store(h)
}

// setServing is the Manager's report of self's registration.
func (s *Server) setServing(serving bool) {
	h := s.health.Load()
	if h == nil {
		return
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	h.SetServingStatus("", st)
	h.SetServingStatus(HealthService, st)
}

// stopServing reports NOT_SERVING for good: the Manager closed.
func (s *Server) stopServing() {
	if h := s.health.Load(); h != nil {
		h.Shutdown()
	}
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Delivered: s.delivered.Load(), UnknownWorker: s.unknown.Load(), Streams: s.streams.Load()}
}

// deliver hands data to worker's handler, or counts it as unknown.
func (s *Server) deliver(ctx context.Context, worker string, data []byte) error {
	s.mu.RLock()
	h := s.handlers[worker]
	s.mu.RUnlock()
	if h == nil {
		s.unknown.Add(1)
		return fmt.Errorf("%w %q", ErrUnknownWorker, worker)
	}
	h.Handle(ctx, data)
	s.delivered.Add(1)
	return nil
}

type service struct {
	remotepb.UnimplementedRemoteServer
	s *Server
}

func (v *service) Call(stream grpc.ClientStreamingServer[remotepb.Frame, remotepb.Summary]) error {
	v.s.streams.Add(1)
	var sum remotepb.Summary
	ctx := stream.Context()
	var last workerCache
	frame := newIncomingFrame()
	for {
		// Emptied first: were protobuf ever to unmarshal without frame's
		// method, the frame would read as empty, never as the one before.
		frame.buf = nil
		if err := stream.RecvMsg(frame); err != nil {
			if err == io.EOF {
				return stream.SendAndClose(&sum)
			}
			return err
		}
		var delivered, unknown uint64
		malformed := eachMessage(frame.buf, func(worker, data []byte) {
			h := last.lookup(v.s, worker)
			if h == nil {
				unknown++
				return
			}
			h.Handle(ctx, data)
			delivered++
		})
		sum.Delivered += delivered
		sum.UnknownWorker += unknown
		v.s.delivered.Add(delivered)
		v.s.unknown.Add(unknown)
		if malformed != nil {
			return status.Errorf(codes.InvalidArgument, "%v (after %d messages of this stream were delivered)", malformed, sum.Delivered)
		}
	}
}

// workerCache remembers the handler of the last worker a stream named, since
// a batch is mostly messages for one worker: the lookup is then a compare,
// not a lock and a map. Handlers are never removed, so a found handler stays
// right; a worker without one is looked up again each time, since its
// handler may be registered meanwhile.
type workerCache struct {
	worker  string
	handler Handler
}

func (w *workerCache) lookup(s *Server, worker []byte) Handler {
	if w.handler != nil && string(worker) == w.worker {
		return w.handler
	}
	s.mu.RLock()
	h := s.handlers[string(worker)]
	s.mu.RUnlock()
	if h != nil {
		w.worker, w.handler = string(worker), h
	}
	return h
}
