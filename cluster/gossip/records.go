package gossip

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/hashicorp/memberlist"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// state is what members replicate besides their entries: the records and
// the highest term each election has seen. A write is pushed to every
// member at once and the whole state is exchanged in memberlist's periodic
// push/pull, so a member that missed a write, or joined later, catches up.
type state struct {
	Records map[string]record `json:"records"`
	Terms   map[string]uint64 `json:"terms"`
}

// record is one record's value. Clock is a Lamport clock: a write takes the
// clock of the version it replaces plus one, and of two writes the higher
// (Clock, Writer) wins on every member.
type record struct {
	Data   []byte `json:"data"`
	Clock  uint64 `json:"clock"`
	Writer string `json:"writer"` // the writing member's memberlist name
}

func (r record) version() string {
	if r.Clock == 0 {
		return ""
	}
	return strconv.FormatUint(r.Clock, 10) + "." + r.Writer
}

func (r record) newer(than record) bool {
	return r.Clock > than.Clock || r.Clock == than.Clock && r.Writer > than.Writer
}

// merge folds a peer's state (a push/pull exchange or a pushed write) into
// this member's. A message that does not decode is dropped: push/pull
// brings the state again.
func (c *Coordinator) merge(buf []byte) {
	var in state
	if err := json.Unmarshal(buf, &in); err != nil {
		c.opts.Logger.Warn("gossip: dropping a state message that does not decode", "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	for name, r := range in.Records {
		if cluster.CheckRecord(name) == nil && r.newer(c.state.Records[name]) {
			c.state.Records[name] = r
			changed = true
		}
	}
	for name, t := range in.Terms {
		if t > c.state.Terms[name] {
			c.state.Terms[name] = t
			changed = true
		}
	}
	if changed {
		c.wakeLocked()
	}
}

// GetRecord returns this member's copy of the record. A write made on
// another member arrives within a round trip, or at the next push/pull.
func (c *Coordinator) GetRecord(ctx context.Context, name string) ([]byte, string, error) {
	if err := backend.CheckRecord(c.ctx, name); err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.state.Records[name]
	if !ok {
		return nil, "", nil
	}
	return bytes.Clone(r.Data), r.version(), nil
}

// PutRecord writes the record if this member's copy is at version, and
// pushes the write to every member it knows, waiting for them or ctx.
//
// Unfenced: the compare is against this member's copy, not a consensus.
// Two members writing over the same version at once both succeed here, and
// every member then keeps the same one of the two (the higher Lamport
// clock, then the higher writer name); the other write is lost.
func (c *Coordinator) PutRecord(ctx context.Context, name string, data []byte, version string) (string, error) {
	if err := backend.CheckRecord(c.ctx, name); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	c.mu.Lock()
	cur := c.state.Records[name]
	if cur.version() != version {
		c.mu.Unlock()
		return "", fmt.Errorf("gossip: record %q is at version %q, not %q: %w", name, cur.version(), version, cluster.ErrVersionConflict)
	}
	next := record{Data: bytes.Clone(data), Clock: cur.Clock + 1, Writer: c.name}
	c.state.Records[name] = next
	c.wakeLocked()
	c.mu.Unlock()
	msg, err := json.Marshal(state{Records: map[string]record{name: next}})
	if err != nil {
		return "", err
	}
	c.push(ctx, msg)
	return next.version(), nil
}

// push sends msg to every other member over TCP, concurrently, and waits
// for all or ctx. Failures are left to push/pull.
func (c *Coordinator) push(ctx context.Context, msg []byte) {
	var wg sync.WaitGroup
	for _, m := range c.peers() {
		wg.Add(1)
		go func(m *memberlist.Node) {
			defer wg.Done()
			if err := c.ml.SendReliable(m, msg); err != nil {
				c.opts.Logger.Debug("gossip: pushing a record write", "member", m.Name, "err", err)
			}
		}(m)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// WatchRecord streams the version of this member's copy of the record.
func (c *Coordinator) WatchRecord(ctx context.Context, name string) <-chan string {
	return backend.WatchRecord(ctx, c.ctx, name, c.life.Go, func(ctx context.Context, publish func(string)) {
		for {
			c.mu.Lock()
			v, wake := c.state.Records[name].version(), c.gossiped
			c.mu.Unlock()
			publish(v)
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
		}
	})
}
