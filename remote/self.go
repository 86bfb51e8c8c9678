package remote

import (
	"context"

	"github.com/herd-go/herd/cluster"
)

// SelfClient delivers to the local server in-process: no network, no queue.
// It is what a snapshot holds for the node this process registered.
type SelfClient struct {
	node   cluster.Node
	server *Server
}

// NewSelfClient returns a client for self that calls server's handlers directly.
func NewSelfClient(self cluster.Node, server *Server) *SelfClient {
	return &SelfClient{node: self, server: server}
}

// Send calls worker's handler on this goroutine. It returns ErrUnknownWorker
// if no handler is registered for worker.
func (c *SelfClient) Send(ctx context.Context, worker string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.server.deliver(ctx, worker, data)
}

// Close does nothing; self needs no cleanup.
func (c *SelfClient) Close() error { return nil }
