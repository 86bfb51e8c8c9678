package cluster

import (
	"context"
	"sync"

	"github.com/herd-go/herd/internal/latest"
)

// Standalone is the single-node coordinator and herd's default
// (cluster.selector: standalone): the view is self alone and no external
// service is involved. It is built in, so it needs no import.
type Standalone struct {
	mu     sync.Mutex
	self   *Node
	closed bool
	view   latest.Value[[]Node]
}

// NewStandalone returns a standalone coordinator. The advertised address
// settings of cluster.standalone are applied by Config.SelfNode.
func NewStandalone() *Standalone { return &Standalone{} }

// RegisterRemote records self; the view becomes [self].
func (c *Standalone) RegisterRemote(_ context.Context, self Node) error {
	if err := self.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	self.Self = true
	c.self = &self
	c.view.Publish([]Node{self})
	return nil
}

// QueryRemoteNodes returns [self], or no nodes before RegisterRemote.
func (c *Standalone) QueryRemoteNodes(context.Context) ([]Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.self == nil {
		return []Node{}, nil
	}
	return []Node{*c.self}, nil
}

// Watch delivers [self] once registered.
func (c *Standalone) Watch(ctx context.Context) <-chan []Node { return c.view.Subscribe(ctx) }

// Close ends every watch.
func (c *Standalone) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.view.Close()
	return nil
}
