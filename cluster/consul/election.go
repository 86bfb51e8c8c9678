package consul

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/herd-go/herd/backoff"
	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// electionKey is the KV key an election's leader holds with its session.
func (c *Coordinator) electionKey(name string) string {
	return "herd/election/" + c.cfg.ServiceName + "/" + name
}

// lockRetry is how often a candidate tries a free key again while Consul's
// lock-delay still refuses it.
const lockRetry = 100 * time.Millisecond

// Campaign is Consul's leader-election recipe (the protocol of api.Lock): a
// session of cluster.consul.electionTTL, renewed by herd, and an acquire of
// the election's key with it; a blocking query waits for the key to be free.
// The term is the key's ModifyIndex when acquired, a Raft index, so every
// new leader's is greater. Done closes once a renewal has not been
// acknowledged for the TTL; Consul keeps the session for at least the TTL
// after the last renewal it received (twice the TTL, in practice) and then
// refuses the key for the lock-delay, so the margin is at least
// electionLockDelay.
func (c *Coordinator) Campaign(ctx context.Context, name string) (*cluster.Leadership, error) {
	id := c.selfID()
	entry, cctx, err := c.life.Elections.Begin(ctx, name, id)
	if err != nil {
		return nil, err
	}
	s, err := c.newElectionSession(cctx, name)
	if err != nil {
		if cctx.Err() != nil {
			err = backend.CampaignErr(cctx, fmt.Sprintf("consul: campaign for %q", name))
		}
		entry.Forget()
		return nil, err
	}
	stopLost := context.AfterFunc(s.lost, func() { entry.Cancel(context.Cause(s.lost)) })
	key := c.electionKey(name)
	term, err := c.acquire(cctx, key, id, s.id)
	stopLost()
	if err != nil {
		err = fmt.Errorf("consul: campaign for %q: %w", name, err)
		if cctx.Err() != nil {
			err = backend.CampaignErr(cctx, fmt.Sprintf("consul: campaign for %q", name))
		}
		s.end(context.Background(), "")
		entry.Forget()
		return nil, err
	}
	l, lose, err := entry.Lead(term, func(rctx context.Context) error {
		return s.end(rctx, key)
	})
	if err != nil {
		return nil, fmt.Errorf("consul: campaign for %q: %w", name, err)
	}
	context.AfterFunc(s.lost, func() {
		cause := context.Cause(s.lost)
		lose(cause)
		if errors.Is(cause, cluster.ErrSessionLost) {
			go s.abandon(key) // not in c.wg: this may run while Close waits on it; Close's cancel ends it
		}
	})
	return l, nil
}

// abandon releases a lost leadership's key once the agent answers again, so
// that the next leader need not wait for Consul to expire the session: it
// tries until Consul would have expired it anyway.
func (s *electionSession) abandon(key string) {
	deadline := time.Now().Add(2 * s.c.cfg.ElectionTTL)
	for time.Now().Before(deadline) {
		if s.end(s.c.ctx, key) == nil || backend.Sleep(s.c.ctx, time.Second, nil) != nil {
			return
		}
	}
}

// acquire tries the key with the session until it holds it; between tries
// it waits on a blocking query for the key to be free.
func (c *Coordinator) acquire(ctx context.Context, key, id, session string) (uint64, error) {
	bo := backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
	var index uint64
	for {
		kv := c.agent().KV()
		ok, _, err := kv.Acquire(&api.KVPair{Key: key, Value: []byte(id), Session: session}, (&api.WriteOptions{}).WithContext(ctx))
		if err == nil && ok {
			pair, _, err := kv.Get(key, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
			if err == nil && (pair == nil || pair.Session != session) {
				err = fmt.Errorf("the key %s was not ours when read after the acquire: %w", key, cluster.ErrSessionLost)
			}
			if err == nil {
				return pair.ModifyIndex, nil
			}
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err != nil {
			if errors.Is(err, cluster.ErrSessionLost) {
				return 0, err
			}
			if !bo.Wait(ctx) {
				return 0, ctx.Err()
			}
			continue
		}
		bo.Reset()
		// Held, or free but within its lock-delay: wait for a change.
		pair, meta, err := kv.Get(key, (&api.QueryOptions{WaitIndex: index, WaitTime: c.cfg.WaitTime}).WithContext(ctx))
		if err != nil {
			index = 0
			continue
		}
		index = meta.LastIndex
		if pair == nil || pair.Session == "" {
			// Free: the refusal was the lock-delay, which no write ends.
			// Try again shortly, and read without blocking next time.
			if err := backend.Sleep(ctx, lockRetry, nil); err != nil {
				return 0, err
			}
			index = 0
		}
	}
}

// electionSession is a Consul session herd renews every third of its TTL;
// lost ends, with ErrSessionLost, when no renewal was acknowledged for the
// TTL or Consul says the session is gone.
type electionSession struct {
	c        *Coordinator
	id       string
	lost     context.Context
	loseWith context.CancelCauseFunc
	stop     context.CancelFunc
}

func (c *Coordinator) newElectionSession(ctx context.Context, name string) (*electionSession, error) {
	ttl := c.cfg.ElectionTTL
	sent := time.Now()
	id, _, err := c.agent().Session().Create(&api.SessionEntry{
		Name:      "herd election " + name,
		TTL:       ttl.String(),
		LockDelay: c.cfg.ElectionLockDelay,
		Behavior:  api.SessionBehaviorRelease,
	}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.Code == 403 {
			return nil, fmt.Errorf("consul: creating an election session: %w (the ACL token, cluster.consul.aclToken / SW_CLUSTER_CONSUL_ACLTOKEN, needs session:write on this agent's node and key:write on %s)", err, c.electionKey(name))
		}
		return nil, fmt.Errorf("consul: creating an election session: %w", err)
	}
	s := &electionSession{c: c, id: id}
	s.lost, s.loseWith = context.WithCancelCause(context.Background())
	runCtx, stop := context.WithCancel(c.ctx)
	s.stop = stop
	dog := backend.NewWatchdog(sent.Add(ttl), func() {
		s.loseWith(fmt.Errorf("consul: the election session was not renewed within %s: %w", ttl, cluster.ErrSessionLost))
	})
	c.life.Go(func() {
		defer dog.Stop()
		lctx, cancel := context.WithCancel(runCtx)
		defer cancel()
		stop := context.AfterFunc(s.lost, cancel) // the loop also ends with the session
		defer stop()
		backend.KeepRenewing(lctx, ttl/3, dog, func(rctx context.Context) (time.Duration, error) {
			entry, _, err := c.agent().Session().Renew(id, (&api.WriteOptions{}).WithContext(rctx))
			if err == nil && entry == nil {
				return 0, fmt.Errorf("consul: the election session is gone: %w", cluster.ErrSessionLost)
			}
			return ttl, err
		}, func(err error) { s.loseWith(err) })
	})
	return s, nil
}

// end stops renewing, releases key (if not empty) and destroys the session.
// Releasing first spares the next leader the lock-delay, which Consul
// applies only to locks a destroyed or expired session held.
func (s *electionSession) end(ctx context.Context, key string) error {
	s.loseWith(cluster.ErrResigned)
	s.stop()
	rctx, cancel := context.WithTimeout(ctx, s.c.cfg.Timeout)
	defer cancel()
	var err error
	if key != "" {
		_, _, err = s.c.agent().KV().Release(&api.KVPair{Key: key, Session: s.id}, (&api.WriteOptions{}).WithContext(rctx))
	}
	if _, derr := s.c.agent().Session().Destroy(s.id, (&api.WriteOptions{}).WithContext(rctx)); derr != nil && err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("consul: resigning (the session expires by itself after %s): %w", s.c.cfg.ElectionTTL, err)
	}
	return nil
}

// Observe follows the election's key with blocking queries.
func (c *Coordinator) Observe(ctx context.Context, name string) <-chan cluster.Leader {
	key := c.electionKey(name)
	return backend.Observe(ctx, c.ctx, name, c.life.Go, func(ctx context.Context, publish func(cluster.Leader)) {
		c.follow(ctx, key, func(pair *api.KVPair) {
			leader := cluster.Leader{}
			if pair != nil && pair.Session != "" {
				leader = cluster.Leader{ID: string(pair.Value), Term: pair.ModifyIndex}
			}
			publish(leader)
		})
	})
}

// follow hands read the key's pair (nil when absent), then again after
// every change, by blocking queries, until ctx ends.
func (c *Coordinator) follow(ctx context.Context, key string, read func(*api.KVPair)) {
	bo := backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
	var index uint64
	for ctx.Err() == nil {
		pair, meta, err := c.agent().KV().Get(key, (&api.QueryOptions{WaitIndex: index, WaitTime: c.cfg.WaitTime}).WithContext(ctx))
		if err != nil {
			index = 0
			bo.Wait(ctx)
			continue
		}
		bo.Reset()
		read(pair)
		if meta.LastIndex < index { // the index went back (a restored server): start over
			index = 0
			continue
		}
		index = meta.LastIndex
	}
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
