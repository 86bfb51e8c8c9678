// Package standalone is the single-node coordinator, herd's default: the
// view is self alone and no external service is involved.
//
// It registers itself under the name "standalone":
//
//	import _ "github.com/herd-go/herd/cluster/standalone"
package standalone

import (
	"context"
	"sync"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/latest"
)

func init() {
	cluster.RegisterConfigured("standalone", func() Config { return Config{} }, func(context.Context, Config) (*Coordinator, error) {
		return New(), nil
	})
}

// Config is the cluster.standalone section: nothing but the advertised
// address overrides, which cluster.Config.SelfNode reads.
type Config struct {
	InternalComHost string `yaml:"internalComHost"`
	InternalComPort int    `yaml:"internalComPort"`
}

// Coordinator keeps self as the only member.
type Coordinator struct {
	mu     sync.Mutex
	self   *cluster.Node
	closed bool
	view   latest.Value[[]cluster.Node]
}

// New returns a standalone coordinator.
func New() *Coordinator { return &Coordinator{} }

// RegisterRemote records self; the view becomes [self].
func (c *Coordinator) RegisterRemote(_ context.Context, self cluster.Node) error {
	if err := self.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return cluster.ErrClosed
	}
	self.Self = true
	c.self = &self
	c.view.Publish([]cluster.Node{self})
	return nil
}

// QueryRemoteNodes returns [self], or no nodes before RegisterRemote.
func (c *Coordinator) QueryRemoteNodes(context.Context) ([]cluster.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, cluster.ErrClosed
	}
	if c.self == nil {
		return []cluster.Node{}, nil
	}
	return []cluster.Node{*c.self}, nil
}

// Watch delivers [self] once registered.
func (c *Coordinator) Watch(ctx context.Context) <-chan []cluster.Node {
	return c.view.Subscribe(ctx)
}

// Close ends every watch.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.view.Close()
	return nil
}
