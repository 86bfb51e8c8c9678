package shard

import (
	"errors"
	"fmt"

	"github.com/herd-go/herd/selector"
)

// ErrUnowned is returned by Selector.Select for a slot that has no owner
// now: it is moving between nodes, or no table has been read yet. Retry
// after a moment, or queue the message.
var ErrUnowned = errors.New("shard: the slot has no owner now")

// Selector routes a message to the node that owns a slot, for
// remote.Sender: the key it is given is the slot, so
//
//	sender.Send(ctx, worker, int32(g.SlotOf(key)), data, g.Selector())
//
// sends data to the owner of key's slot, as this node last read the table.
type Selector struct{ g *Group }

// Selector returns a selector over this group's table.
func (g *Group) Selector() Selector { return Selector{g: g} }

// Select returns the index in peers of slot's owner.
func (s Selector) Select(slot int32, peers selector.Peers) (int, error) {
	owner := s.g.Owner(int(slot))
	if owner == "" {
		if slot < 0 || int(slot) >= s.g.opts.Slots {
			return 0, fmt.Errorf("shard: slot %d is out of range [0, %d)", slot, s.g.opts.Slots)
		}
		return 0, fmt.Errorf("slot %d: %w", slot, ErrUnowned)
	}
	for i := range peers.Len() {
		if peers.ID(i) == owner {
			return i, nil
		}
	}
	return 0, fmt.Errorf("shard: slot %d's owner %s is not in this node's view of peers yet", slot, owner)
}
