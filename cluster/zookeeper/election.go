package zookeeper

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// sessionCheck is how often a campaign or leadership checks that the session
// its znode belongs to is still connected. go-zookeeper declares a silent
// connection dead after two thirds of the session timeout, and the server
// expires the session no sooner than the full timeout after last hearing
// from it: Done closes about a third of the session timeout, less this
// period, before another candidate can win.
const sessionCheck = 50 * time.Millisecond

// electionDir holds an election's candidates: beside the member path, not
// under it, so members never see them.
func (c *Coordinator) electionDir(name string) string { return c.path + ".election/" + name }

// candidate is one campaign's ephemeral-sequential znode.
type candidate struct {
	path    string
	seq     uint64
	conn    *link
	session int64
}

// Campaign is ZooKeeper's leader recipe: an ephemeral-sequential znode per
// candidate, created under a GUID so that a create whose reply was lost is
// found rather than left as a ghost; each candidate watches only the one
// before it; the lowest leads, once its znode's ephemeralOwner is checked to
// be our live session. The term is the znode's sequence number plus one.
func (c *Coordinator) Campaign(ctx context.Context, name string) (*cluster.Leadership, error) {
	id := c.selfID()
	entry, cctx, err := c.life.Elections.Begin(ctx, name, id)
	if err != nil {
		return nil, err
	}
	type result struct {
		cand candidate
		err  error
	}
	out := make(chan result, 1)
	c.life.Go(func() {
		cand, err := c.campaign(cctx, entry, c.electionDir(name), id)
		out <- result{cand, err}
	})
	var r result
	select {
	case r = <-out:
	case <-cctx.Done():
		r.err = cctx.Err()
		// The campaign deletes its znode when it fails; if it won just now,
		// the win is given up here.
		c.life.Go(func() {
			if late := <-out; late.err == nil {
				_ = c.dropCandidate(late.cand)
			}
		})
	}
	if r.err != nil {
		err := fmt.Errorf("zookeeper: campaign for %q: %w", name, r.err)
		if cctx.Err() != nil {
			err = backend.CampaignErr(cctx, fmt.Sprintf("zookeeper: campaign for %q", name))
		}
		entry.Forget()
		return nil, err
	}
	cand := r.cand
	l, lose, err := entry.Lead(cand.seq, func(rctx context.Context) error {
		dropped := make(chan error, 1)
		c.life.Go(func() { dropped <- c.dropCandidate(cand) })
		select {
		case err := <-dropped:
			return err
		case <-rctx.Done():
			return fmt.Errorf("zookeeper: resigning %q: %w (the znode goes when the session ends)", name, rctx.Err())
		}
	})
	if err != nil {
		return nil, fmt.Errorf("zookeeper: campaign for %q: %w", name, err)
	}
	c.life.Go(func() { c.guard(l, lose, cand) })
	return l, nil
}

// campaign creates the candidate znode and waits until it is the lowest.
// Whenever it returns an error, the znode is deleted.
func (c *Coordinator) campaign(ctx context.Context, entry *backend.Entry, dir, id string) (cand candidate, err error) {
	cand.conn = c.zk()
	cand.session = cand.conn.SessionID()
	if cand.conn.State() != zk.StateHasSession {
		return cand, fmt.Errorf("no session: %w", cluster.ErrSessionLost)
	}
	cand.path, err = c.createCandidate(cand.conn, dir, id)
	if err != nil {
		return cand, err
	}
	defer func() {
		if err == nil {
			return
		}
		if ctx.Err() == nil && !errors.Is(err, cluster.ErrSessionLost) && !c.ownsSession(cand) {
			err = fmt.Errorf("%w: %w", cluster.ErrSessionLost, err)
		}
		c.life.Go(func() { _ = c.dropCandidate(cand) })
	}()
	if cand.seq, err = sequence(cand.path); err != nil {
		return cand, err
	}
	cand.seq++ // ZooKeeper counts from 0; terms start at 1
	mine := cand.path[len(dir)+1:]
	lost := c.sessionLost(ctx, cand)
	for {
		children, _, err := cand.conn.Children(dir)
		if err != nil {
			return cand, err
		}
		slices.SortFunc(children, bySequence)
		at := slices.Index(children, mine)
		if at < 0 {
			return cand, fmt.Errorf("the candidate znode %s is gone: %w", cand.path, cluster.ErrSessionLost)
		}
		if at == 0 {
			// Curator once granted leadership to a znode of a session that
			// had already expired: check the owner first.
			_, stat, err := cand.conn.Exists(cand.path)
			if err != nil {
				return cand, err
			}
			if stat.EphemeralOwner != cand.session || cand.conn.SessionID() != cand.session {
				return cand, fmt.Errorf("the candidate znode's session %#x is not ours (%#x): %w", stat.EphemeralOwner, cand.conn.SessionID(), cluster.ErrSessionLost)
			}
			return cand, nil
		}
		// Only the predecessor is watched: one leaving wakes one waiter.
		exists, _, fired, err := cand.conn.ExistsW(dir + "/" + children[at-1])
		if err != nil {
			return cand, err
		}
		if !exists {
			continue
		}
		select {
		case <-fired:
		case <-lost:
			return cand, fmt.Errorf("the session ended while waiting: %w", cluster.ErrSessionLost)
		case <-ctx.Done():
			return cand, context.Cause(ctx)
		}
	}
}

// createCandidate creates dir/n-<guid>-<seq>. If the reply is lost, the
// znode may exist anyway: it is looked up by its GUID before trying again.
func (c *Coordinator) createCandidate(conn *link, dir, id string) (string, error) {
	var guid [16]byte
	_, _ = rand.Read(guid[:])
	prefix := "n-" + hex.EncodeToString(guid[:]) + "-"
	var err error
	for range 5 {
		var p string
		p, err = conn.Create(dir+"/"+prefix, []byte(id), zk.FlagEphemeral|zk.FlagSequence, c.acl)
		switch {
		case err == nil:
			return p, nil
		case errors.Is(err, zk.ErrNoNode):
			if err = c.ensure(dir); err != nil {
				return "", err
			}
			continue
		case errors.Is(err, zk.ErrConnectionClosed), errors.Is(err, zk.ErrSessionMoved):
		default:
			return "", err
		}
		children, _, lerr := conn.Children(dir)
		if lerr != nil {
			return "", errors.Join(err, lerr)
		}
		for _, child := range children {
			if strings.HasPrefix(child, prefix) {
				return dir + "/" + child, nil
			}
		}
	}
	return "", fmt.Errorf("creating a candidate under %s: %w", dir, err)
}

// sequence is the number ZooKeeper appended to a sequential znode's name.
func sequence(p string) (uint64, error) {
	if len(p) < 10 {
		return 0, fmt.Errorf("%s has no sequence number", p)
	}
	return strconv.ParseUint(p[len(p)-10:], 10, 64)
}

func bySequence(a, b string) int {
	sa, _ := sequence(a)
	sb, _ := sequence(b)
	return int(sa) - int(sb)
}

// sessionLost returns a channel closed once cand's session is no longer
// connected, or ctx ends.
func (c *Coordinator) sessionLost(ctx context.Context, cand candidate) <-chan struct{} {
	lost := make(chan struct{})
	c.life.Go(func() {
		defer close(lost)
		tick := time.NewTicker(sessionCheck)
		defer tick.Stop()
		for c.ownsSession(cand) {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			case <-c.ctx.Done():
				return
			}
		}
	})
	return lost
}

func (c *Coordinator) ownsSession(cand candidate) bool {
	conn := c.zk()
	return conn == cand.conn && conn.State() == zk.StateHasSession && conn.SessionID() == cand.session
}

// guard ends the leadership once its session is no longer connected or its
// znode is deleted, then deletes the znode if the session survived, so the
// next candidate can win.
func (c *Coordinator) guard(l *cluster.Leadership, lose func(error), cand candidate) {
	_, _, deleted, err := cand.conn.ExistsW(cand.path)
	if err != nil {
		deleted = nil
	}
	select {
	case <-c.sessionLost(l.Context(), cand):
		if l.Err() == nil {
			lose(fmt.Errorf("zookeeper: the connection of session %#x was lost: %w", cand.session, cluster.ErrSessionLost))
		}
	case <-deleted:
		lose(fmt.Errorf("zookeeper: the leader znode %s was deleted: %w", cand.path, cluster.ErrSessionLost))
	case <-l.Done():
		return // resigned or closed: Resign deletes the znode
	}
	_ = c.dropCandidate(cand)
}

// dropCandidate deletes cand's znode. While the session is disconnected it
// retries (the session may come back, znode and all); once the session is
// gone, the server deletes the znode itself.
func (c *Coordinator) dropCandidate(cand candidate) error {
	for {
		err := cand.conn.Delete(cand.path, -1)
		if err == nil || errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		if cand.conn.SessionID() != cand.session || c.zk() != cand.conn || c.ctx.Err() != nil {
			return nil
		}
		select {
		case <-time.After(sessionCheck):
		case <-c.ctx.Done():
			return nil
		}
	}
}

// Observe lists the election's candidates with a watch; the lowest leads.
func (c *Coordinator) Observe(ctx context.Context, name string) <-chan cluster.Leader {
	dir := c.electionDir(name)
	return backend.Observe(ctx, c.ctx, name, c.life.Go, func(ctx context.Context, publish func(cluster.Leader)) {
		bo := c.backoff()
		for ctx.Err() == nil {
			leader, fired, err := c.leaderOf(dir)
			if err != nil {
				bo.Wait(ctx)
				continue
			}
			bo.Reset()
			publish(leader)
			select {
			case <-fired:
			case <-ctx.Done():
			}
		}
	})
}

// leaderOf reads the lowest candidate of dir and arms a watch on the list.
func (c *Coordinator) leaderOf(dir string) (cluster.Leader, <-chan zk.Event, error) {
	conn := c.zk()
	children, _, fired, err := conn.ChildrenW(dir)
	if errors.Is(err, zk.ErrNoNode) {
		if err = c.ensure(dir); err == nil {
			children, _, fired, err = conn.ChildrenW(dir)
		}
	}
	if err != nil {
		return cluster.Leader{}, nil, err
	}
	slices.SortFunc(children, bySequence)
	for _, child := range children {
		data, _, err := conn.Get(dir + "/" + child)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return cluster.Leader{}, nil, err
		}
		seq, _ := sequence(child)
		return cluster.Leader{ID: string(data), Term: seq + 1}, fired, nil
	}
	return cluster.Leader{}, fired, nil
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
func (c *Coordinator) RegisteredID() string { return c.selfID() }
