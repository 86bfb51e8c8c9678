package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"

	"github.com/herd-go/herd/remote/internal/remotepb"
)

// Handler processes the data sent to one worker. Calls for messages from the
// same peer are made one at a time, in the order the peer sent them; calls
// for different peers run concurrently. The handler owns data.
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
	Delivered     uint64 // messages handed to a handler, from peers or self
	UnknownWorker uint64 // messages dropped because no handler had their worker name
	Streams       uint64 // peer streams accepted
}

// Server dispatches incoming messages to handlers by worker name.
type Server struct {
	mu       sync.RWMutex
	handlers map[string]Handler

	delivered, unknown, streams atomic.Uint64
}

// NewServer returns a server with no handlers.
func NewServer() *Server { return &Server{handlers: map[string]Handler{}} }

// Handle registers h for worker. Registering a name twice is an error.
func (s *Server) Handle(worker string, h Handler) error {
	if worker == "" || h == nil {
		return errors.New("remote: Handle needs a worker name and a handler")
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

func (v *service) Call(stream grpc.ClientStreamingServer[remotepb.Batch, remotepb.Summary]) error {
	v.s.streams.Add(1)
	var sum remotepb.Summary
	ctx := stream.Context()
	for {
		batch, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&sum)
		}
		if err != nil {
			return err
		}
		for _, m := range batch.GetMessages() {
			if v.s.deliver(ctx, m.GetWorker(), m.GetData()) != nil {
				sum.UnknownWorker++
			} else {
				sum.Delivered++
			}
		}
	}
}
