package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/herd-go/herd/backoff"
	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// electionMargin is how long before the earliest moment the server could
// expire a campaign's lease its Leadership's Done is closed: the server
// renews a lease when a keepalive arrives, which is after we sent it, so the
// lease lives at least TTL from the send.
const electionMargin = time.Second

// electionPrefix is where the candidates of an election keep their keys:
// beside the member prefix, not under it, so members never see them.
func (c *Coordinator) electionPrefix(name string) string {
	return strings.TrimSuffix(c.prefix, "/") + ".election/" + name + "/"
}

// Campaign runs concurrency.Election on a session of its own, bound to a
// lease of cluster.etcd.electionTTL that herd renews itself so that it knows
// when the lease could expire: the term is the leader key's create revision.
func (c *Coordinator) Campaign(ctx context.Context, name string) (*cluster.Leadership, error) {
	id := c.selfID()
	entry, cctx, err := c.life.Elections.Begin(ctx, name, id)
	if err != nil {
		return nil, err
	}
	s, err := c.newElectionSession(cctx)
	if err != nil {
		entry.Forget()
		return nil, err
	}
	lost := context.AfterFunc(s.lost, func() { entry.Cancel(context.Cause(s.lost)) })

	e := concurrency.NewElection(s.session, strings.TrimSuffix(c.electionPrefix(name), "/"))
	// Campaign cleans up after a cancelled wait with a call bounded only by
	// the client's life: on a cut connection it would hang, so the caller
	// gets the cancellation at once and the clean-up finishes in the
	// background (revoking the lease removes the candidate key anyway).
	won := make(chan error, 1)
	go func() { won <- e.Campaign(cctx, id) }() // ends at the latest when Close closes the client
	select {
	case err = <-won:
	case <-cctx.Done():
		err = cctx.Err()
	}
	if err == nil {
		err = c.stillLeads(cctx, e)
	}
	if err != nil {
		err = fmt.Errorf("etcd: campaign for %q: %w", name, err)
		if cctx.Err() != nil {
			err = backend.CampaignErr(cctx, fmt.Sprintf("etcd: campaign for %q", name))
		}
		lost()
		s.end(context.Background())
		entry.Forget()
		return nil, err
	}
	lost()
	l, lose, err := entry.Lead(uint64(e.Rev()), func(rctx context.Context) error {
		err := e.Resign(rctx)
		s.end(rctx)
		if err != nil {
			return fmt.Errorf("etcd: resigning %q (the lease still expires within %s): %w", name, c.cfg.ElectionTTL, err)
		}
		return nil
	})
	if err != nil {
		s.end(context.Background())
		return nil, fmt.Errorf("etcd: campaign for %q: %w", name, err)
	}
	context.AfterFunc(s.lost, func() {
		cause := context.Cause(s.lost)
		lose(cause)
		// Stop the session's own keepalives and revoke the lease, or a
		// leadership lost to a short outage would keep its key, and the
		// election, once the connection came back. Not in c.wg: this may
		// run while Close waits on it; Close's cancel ends it.
		if errors.Is(cause, cluster.ErrSessionLost) {
			go s.end(c.ctx)
		}
	})
	return l, nil
}

// stillLeads checks that the key that won still exists: the lease may have
// ended while the win was on its way.
func (c *Coordinator) stillLeads(ctx context.Context, e *concurrency.Election) error {
	resp, err := c.client.Get(ctx, e.Key())
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != e.Rev() {
		return fmt.Errorf("the leader key %s was gone when the win arrived: %w", e.Key(), cluster.ErrSessionLost)
	}
	return nil
}

// electionSession is a lease of ElectionTTL that herd keeps alive itself, so
// that it knows the earliest moment the server could expire it; lost ends,
// with ErrSessionLost, electionMargin before that moment or when the server
// says the lease is gone.
type electionSession struct {
	session  *concurrency.Session
	lease    clientv3.LeaseID
	lost     context.Context
	loseWith context.CancelCauseFunc
	stop     context.CancelFunc
	coord    *Coordinator
}

func (c *Coordinator) newElectionSession(ctx context.Context) (*electionSession, error) {
	ttl := c.cfg.ElectionTTL
	sent := time.Now()
	g, err := c.client.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("etcd: granting an election lease of %s: %w (%s)", ttl, err, c.cfg.whatToCheck(err))
	}
	s := &electionSession{lease: g.ID, coord: c}
	s.lost, s.loseWith = context.WithCancelCause(context.Background())
	runCtx, stop := context.WithCancel(c.ctx)
	s.stop = stop
	// The session's own keepalive stream renews the lease too; herd's
	// KeepAliveOnce calls below are what the deadline is measured from.
	s.session, err = concurrency.NewSession(c.client, concurrency.WithLease(g.ID), concurrency.WithContext(runCtx))
	if err != nil {
		stop()
		c.revokeWithin(context.Background(), g.ID)
		return nil, fmt.Errorf("etcd: starting an election session: %w", err)
	}
	dog := backend.NewWatchdog(sent.Add(ttl-electionMargin), func() {
		s.loseWith(fmt.Errorf("etcd: the election lease was not renewed within %s: %w", ttl-electionMargin, cluster.ErrSessionLost))
	})
	c.life.Go(func() {
		defer dog.Stop()
		s.renew(runCtx, dog, ttl)
	})
	return s, nil
}

// renew renews the lease every third of its TTL; each acknowledged
// renewal moves the watchdog's deadline to its send time plus the TTL the
// server granted, less the margin.
func (s *electionSession) renew(ctx context.Context, dog *backend.Watchdog, ttl time.Duration) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.lost, cancel) // the loop also ends with the session
	defer stop()
	backend.KeepRenewing(lctx, ttl/3, dog, func(rctx context.Context) (time.Duration, error) {
		resp, err := s.coord.client.KeepAliveOnce(rctx, s.lease)
		if errors.Is(err, rpctypes.ErrLeaseNotFound) || err == nil && resp.TTL <= 0 {
			return 0, fmt.Errorf("etcd: the election lease expired: %w", cluster.ErrSessionLost)
		}
		if err != nil {
			return 0, err
		}
		return time.Duration(resp.TTL)*time.Second - electionMargin, nil
	}, func(err error) { s.loseWith(err) })
}

// end stops renewing and revokes the lease, which deletes the candidate key.
func (s *electionSession) end(ctx context.Context) {
	s.loseWith(cluster.ErrResigned)
	s.stop()
	s.coord.revokeWithin(ctx, s.lease)
}

// revokeWithin revokes lease, bounded by ctx and the dial timeout.
func (c *Coordinator) revokeWithin(ctx context.Context, lease clientv3.LeaseID) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	_, _ = c.client.Revoke(rctx, lease)
}

// Observe reads the election's first candidate key (the leader) and watches
// the election's prefix, reading again after every change.
func (c *Coordinator) Observe(ctx context.Context, name string) <-chan cluster.Leader {
	return backend.Observe(ctx, c.ctx, name, c.life.Go, func(ctx context.Context, publish func(cluster.Leader)) {
		c.observe(ctx, c.electionPrefix(name), publish)
	})
}

func (c *Coordinator) observe(ctx context.Context, prefix string, publish func(cluster.Leader)) {
	c.follow(ctx, prefix, true, func(resp *clientv3.GetResponse) {
		leader := cluster.Leader{}
		if len(resp.Kvs) > 0 {
			leader = cluster.Leader{ID: string(resp.Kvs[0].Value), Term: uint64(resp.Kvs[0].CreateRevision)}
		}
		publish(leader)
	}, clientv3.WithFirstCreate()...)
}

// follow reads key (every key under it, with prefix) and hands the answer
// to read, then again after every change, until ctx ends.
func (c *Coordinator) follow(ctx context.Context, key string, prefix bool, read func(*clientv3.GetResponse), get ...clientv3.OpOption) {
	var watch []clientv3.OpOption
	if prefix {
		get = append(get, clientv3.WithPrefix())
		watch = append(watch, clientv3.WithPrefix())
	}
	bo := backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
	for ctx.Err() == nil {
		resp, err := c.client.Get(ctx, key, get...)
		if err != nil {
			bo.Wait(ctx)
			continue
		}
		bo.Reset()
		read(resp)
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		w := c.client.Watch(wctx, key, append(watch, clientv3.WithRev(resp.Header.Revision+1))...)
		<-w // any change, or the watch's end: read again
		cancel()
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
