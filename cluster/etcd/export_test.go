package etcd

import (
	"context"
	"strings"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// NudgeSelfGone lets tests report a deletion of self's key at rev, as the
// watch would.
func (c *Coordinator) NudgeSelfGone(rev int64) { c.nudgeSelfGone(rev) }

// LeaderKeyCheck wins election name on a session of its own, deletes the
// leader key when gone is set (as a lease that ended while the win was on
// its way would), and returns what the check after a win says.
func (c *Coordinator) LeaderKeyCheck(ctx context.Context, name string, gone bool) error {
	s, err := concurrency.NewSession(c.client, concurrency.WithTTL(5))
	if err != nil {
		return err
	}
	defer s.Close()
	e := concurrency.NewElection(s, strings.TrimSuffix(c.electionPrefix(name), "/"))
	if err := e.Campaign(ctx, "candidate"); err != nil {
		return err
	}
	if gone {
		if _, err := c.client.Delete(ctx, e.Key()); err != nil {
			return err
		}
	}
	return c.stillLeads(ctx, e)
}
