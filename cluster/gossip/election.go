package gossip

import (
	"context"
	"fmt"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// leadership is one election this node leads.
type leadership struct {
	term uint64
	lose func(error)
}

// claimant is the member that leads name in ms: of those claiming it, the
// highest term, then the lowest node ID.
func claimant(ms map[string]member, name string) (id string, term uint64) {
	for nid, m := range ms {
		t := m.e.Campaigns[name]
		if t > term || t == term && t > 0 && nid < id {
			id, term = nid, t
		}
	}
	return id, term
}

// lowestCandidate is the lowest node ID campaigning for name in ms.
func lowestCandidate(ms map[string]member, name string) string {
	low := ""
	for id, m := range ms {
		if _, ok := m.e.Campaigns[name]; ok && (low == "" || id < low) {
			low = id
		}
	}
	return low
}

// Campaign blocks until this node leads the election. The rule, applied
// by each member to its own view: a leader, once it claims, keeps the
// election while it is a live member; when nobody claims it, the
// campaigning node with the lowest ID claims it, after it has been lowest
// for five gossip rounds, with a term one above the highest any member has
// seen (a Lamport clock carried in the gossip). The claim is gossiped and
// must then stand for five more rounds: of two claims made at once, the
// higher term, then the lower ID, keeps the election and the other node
// goes back to campaigning.
//
// Unfenced: with no consensus underneath, two sides of a partition each
// elect a leader once they have declared the other side dead. When the
// partition heals, the higher term (then the lower ID) keeps the election
// and the other leader's Done closes. A store that keeps the highest term
// it has seen still refuses the deposed leader's writes.
func (c *Coordinator) Campaign(ctx context.Context, name string) (*cluster.Leadership, error) {
	selfID := c.selfID()
	e, cctx, err := c.life.Elections.Begin(ctx, name, selfID)
	if err != nil {
		return nil, err
	}
	if err := c.setCampaign(name, 0); err != nil {
		e.Forget()
		return nil, err
	}
	var lowestSince time.Time
	for {
		ms, wake := c.snapshot()
		var settled <-chan time.Time
		if id, _ := claimant(ms, name); id == "" && lowestCandidate(ms, name) == selfID {
			if lowestSince.IsZero() {
				lowestSince = time.Now()
			}
			wait := c.settle - time.Since(lowestSince)
			if wait <= 0 {
				lead, err := c.claim(cctx, e, name)
				if lead != nil || err != nil {
					return lead, err
				}
				lowestSince = time.Time{}
				continue
			}
			settled = time.After(wait)
		} else {
			lowestSince = time.Time{}
		}
		select {
		case <-cctx.Done():
			return nil, c.abandon(cctx, e, name)
		case <-wake:
		case <-settled:
		}
	}
}

// abandon ends a campaign whose context ended.
func (c *Coordinator) abandon(cctx context.Context, e *backend.Entry, name string) error {
	_ = c.withdraw(name)
	e.Forget()
	return backend.CampaignErr(cctx, "gossip")
}

// claim claims the election with the next term, and leads once the claim
// has stood for c.settle. Beaten by a rival's claim meanwhile, it goes back
// to campaigning and returns nil, nil.
func (c *Coordinator) claim(cctx context.Context, e *backend.Entry, name string) (*cluster.Leadership, error) {
	c.mu.Lock()
	if c.self == nil { // withdrawn: another member holds this node's ID
		clash := c.clash
		c.mu.Unlock()
		_ = c.withdraw(name)
		e.Forget()
		return nil, fmt.Errorf("gossip: campaign for %q: %w: %w", name, cluster.ErrSessionLost, clash)
	}
	term := c.state.Terms[name] + 1
	c.state.Terms[name] = term
	selfID := c.self.ID
	c.mu.Unlock()
	if err := c.setCampaign(name, term); err != nil {
		_ = c.withdraw(name)
		e.Forget()
		return nil, err
	}
	stood := time.After(c.settle)
	for {
		ms, wake := c.snapshot()
		if id, t := claimant(ms, name); id != selfID || t != term {
			if err := c.setCampaign(name, 0); err != nil {
				_ = c.withdraw(name)
				e.Forget()
				return nil, err
			}
			return nil, nil
		}
		select {
		case <-cctx.Done():
			return nil, c.abandon(cctx, e, name)
		case <-wake:
			continue
		case <-stood:
		}
		break
	}
	lead, lose, err := e.Lead(term, func(context.Context) error { return c.withdraw(name) })
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.leading[name] = leadership{term: term, lose: lose}
	c.mu.Unlock()
	c.poke() // a rival claim that arrived meanwhile is judged at once
	return lead, nil
}

// setCampaign records this node's campaign for name (term 0) or its claim,
// and gossips it.
func (c *Coordinator) setCampaign(name string, term uint64) error {
	c.mu.Lock()
	prev, had := c.campaigns[name]
	c.campaigns[name] = term
	if _, err := c.metaLocked(nil); err != nil {
		if had {
			c.campaigns[name] = prev
		} else {
			delete(c.campaigns, name)
		}
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	c.announce()
	return nil
}

// withdraw ends this node's campaign or leadership of name and gossips it,
// so that the next candidate can claim at once.
func (c *Coordinator) withdraw(name string) error {
	c.mu.Lock()
	delete(c.campaigns, name)
	delete(c.leading, name)
	c.mu.Unlock()
	if c.ctx.Err() != nil {
		return nil // closing: the graceful leave takes the campaigns with it
	}
	c.announce()
	return nil
}

// checkLeaderships ends each leadership that a rival's claim beats in ms.
// c.mu is held; the withdrawal is gossiped by a goroutine.
func (c *Coordinator) checkLeaderships(ms map[string]member) {
	if c.self == nil {
		return
	}
	for name, l := range c.leading {
		id, term := claimant(ms, name)
		if id == "" || id == c.self.ID {
			continue
		}
		if term > l.term || term == l.term && id < c.self.ID {
			l.lose(fmt.Errorf("%w: %s claims election %q with term %d, this node's term is %d (gossip elections are unfenced: the two views disagreed)", cluster.ErrSessionLost, id, name, term, l.term))
			delete(c.leading, name)
			delete(c.campaigns, name)
			c.life.Go(c.announce)
		}
	}
}

// Observe streams the election's leader as this member sees it.
func (c *Coordinator) Observe(ctx context.Context, name string) <-chan cluster.Leader {
	return backend.Observe(ctx, c.ctx, name, c.life.Go, func(ctx context.Context, publish func(cluster.Leader)) {
		for {
			ms, wake := c.snapshot()
			id, term := claimant(ms, name)
			publish(cluster.Leader{ID: id, Term: term})
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
		}
	})
}

// Leading returns this node's term while it leads the election by its own
// knowledge (its Leadership's Done not closed): what an operator's report
// shows, where Observe may still name this node during an outage.
func (c *Coordinator) Leading(election string) (term uint64, ok bool) {
	return c.life.Leading(election)
}

// Campaigning reports whether this coordinator campaigns for or leads the
// election, so that package shard can refuse a group named like it.
func (c *Coordinator) Campaigning(election string) bool { return c.life.Campaigning(election) }

// RegisteredID is the ID of the node RegisterRemote registered; empty
// before it (or, on gossip, after the registration was withdrawn).
func (c *Coordinator) RegisteredID() string { return c.life.RegisteredID() }
