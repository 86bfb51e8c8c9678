package remote

import (
	"context"
	"fmt"

	"github.com/herd-go/herd/selector"
)

// Sender is SkyWalking's RemoteSenderService: it sends a message to the node
// a selector picks from the Manager's current snapshot.
type Sender struct {
	m *Manager
}

// NewSender returns a sender over m's snapshots.
func NewSender(m *Manager) *Sender { return &Sender{m: m} }

// Send delivers data to worker on the node sel picks for key. With
// selector.HashCode, every node routes a key to the same owner as long as
// they share the same view.
func (s *Sender) Send(ctx context.Context, worker string, key int32, data []byte, sel selector.Selector) error {
	snap := s.m.Snapshot()
	i, err := sel.Select(key, snap)
	if err != nil {
		return fmt.Errorf("remote: selecting a node for worker %q: %w", worker, err)
	}
	if i < 0 || i >= snap.Len() {
		return fmt.Errorf("remote: selector returned index %d for a view of %d nodes", i, snap.Len())
	}
	return snap.clients[i].Send(ctx, worker, data)
}
