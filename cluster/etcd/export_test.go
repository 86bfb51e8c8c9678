package etcd

// NudgeSelfGone lets tests report a deletion of self's key at rev, as the
// watch would.
func (c *Coordinator) NudgeSelfGone(rev int64) { c.nudgeSelfGone(rev) }
