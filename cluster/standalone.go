package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
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
	// elections by name: with one node there is nobody to wait for.
	elections map[string]*soloElection
	records   map[string]*soloRecord
	logger    *slog.Logger // New's WithLogger; nil from NewStandalone
}

// soloRecord is a record kept in memory; its version counts its writes.
type soloRecord struct {
	data    []byte
	writes  uint64
	version latest.Value[string]
}

type soloElection struct {
	term   uint64
	lead   *Leadership
	lose   func(error)
	leader latest.Value[Leader]
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

// Campaign makes self the leader at once, with a term one above the last
// one of this election.
func (c *Standalone) Campaign(ctx context.Context, election string) (*Leadership, error) {
	if err := CheckElection(election); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.self == nil {
		return nil, ErrNotRegistered
	}
	e := c.election(election)
	if e.lead != nil && e.lead.Err() == nil {
		return nil, fmt.Errorf("cluster: this node already leads election %q; resign first", election)
	}
	e.term++
	term := e.term
	e.lead, e.lose = newLeadership(election, term, func(context.Context) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if e.term == term { // not yet won again
			e.leader.Publish(Leader{})
		}
		return nil
	})
	e.leader.Publish(Leader{ID: c.self.ID, Term: term})
	return e.lead, nil
}

// Campaigning reports whether this node leads the election (standalone
// campaigns win at once).
func (c *Standalone) Campaigning(election string) bool {
	_, ok := c.Leading(election)
	return ok
}

// RegisteredID is the ID of the node RegisterRemote registered; empty
// before it.
func (c *Standalone) RegisteredID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.self == nil {
		return ""
	}
	return c.self.ID
}

// Leading returns this node's term while it leads the election.
func (c *Standalone) Leading(election string) (term uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.elections[election]
	if e == nil || e.lead == nil || e.lead.Err() != nil {
		return 0, false
	}
	return e.lead.Term(), true
}

// Observe streams the election's leader: self while it leads, else none.
func (c *Standalone) Observe(ctx context.Context, election string) <-chan Leader {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || CheckElection(election) != nil {
		ch := make(chan Leader)
		close(ch)
		return ch
	}
	e := c.election(election)
	if _, ok := e.leader.Load(); !ok {
		e.leader.Publish(Leader{})
	}
	return e.leader.Subscribe(ctx)
}

// election returns the named election's state; c.mu is held.
func (c *Standalone) election(name string) *soloElection {
	if c.elections == nil {
		c.elections = make(map[string]*soloElection)
	}
	e, ok := c.elections[name]
	if !ok {
		e = &soloElection{}
		c.elections[name] = e
	}
	return e
}

// GetRecord reads a record kept in memory.
func (c *Standalone) GetRecord(_ context.Context, name string) ([]byte, string, error) {
	if err := CheckRecord(name); err != nil {
		return nil, "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, "", ErrClosed
	}
	r := c.record(name)
	v, _ := r.version.Load()
	return slices.Clone(r.data), v, nil
}

// PutRecord writes a record kept in memory if it is still at version.
func (c *Standalone) PutRecord(_ context.Context, name string, data []byte, version string) (string, error) {
	if err := CheckRecord(name); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", ErrClosed
	}
	r := c.record(name)
	if v, _ := r.version.Load(); v != version {
		return "", fmt.Errorf("record %q is at version %q, not %q: %w", name, v, version, ErrVersionConflict)
	}
	r.writes++
	r.data = slices.Clone(data)
	v := strconv.FormatUint(r.writes, 10)
	r.version.Publish(v)
	return v, nil
}

// WatchRecord streams a record's version.
func (c *Standalone) WatchRecord(ctx context.Context, name string) <-chan string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || CheckRecord(name) != nil {
		ch := make(chan string)
		close(ch)
		return ch
	}
	return c.record(name).version.Subscribe(ctx)
}

func (c *Standalone) record(name string) *soloRecord {
	if c.records == nil {
		c.records = make(map[string]*soloRecord)
	}
	r, ok := c.records[name]
	if !ok {
		r = &soloRecord{}
		r.version.Publish("")
		c.records[name] = r
	}
	return r
}

// Logger is the logger New was given (WithLogger), for what is built over
// this coordinator; nil for one made by NewStandalone.
func (c *Standalone) Logger() *slog.Logger { return c.logger }

// Stats returns the coordinator's counters: always zero, since nothing it
// reads can be malformed or lost.
func (c *Standalone) Stats() Stats { return Stats{} }

// Close ends every watch, leadership and observation.
func (c *Standalone) Close() error {
	c.mu.Lock()
	c.closed = true
	elections := c.elections
	records := c.records
	c.mu.Unlock()
	for _, r := range records {
		r.version.Close()
	}
	for _, e := range elections {
		if e.lead != nil {
			e.lose(ErrClosed)
		}
		e.leader.Close()
	}
	c.view.Close()
	return nil
}
