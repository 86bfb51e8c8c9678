package shard

// plan returns the leader's next state after cur, given the alive nodes,
// and whether it differs: every slot whose owner must change is revoked
// (left ownerless, remembering its owner), and every ownerless slot whose
// revoked owner has let it go gets the owner Assign gives it. So no slot
// is given to a node before the node that had it has released it.
//
// released reports whether the node a slot was revoked from, at the given
// epoch, has released it (acknowledged, or gone long enough).
func plan(cur state, alive []string, released func(from string, revokedAt uint64) bool) (state, bool) {
	target := Assign(cur.table(), alive, len(cur.owners))
	next := cur.clone()
	next.epoch = cur.epoch + 1
	changed := false
	for s, owner := range cur.owners {
		to := target.Owners[s]
		switch {
		case owner != "" && owner != to:
			next.owners[s], next.from[s], next.revokedAt[s] = "", owner, next.epoch
			changed = true
		case owner == "" && cur.from[s] != "" && (cur.from[s] == to || released(cur.from[s], cur.revokedAt[s])):
			next.owners[s], next.from[s], next.revokedAt[s] = to, "", 0
			changed = true
		case owner == "" && cur.from[s] == "" && to != "":
			next.owners[s] = to
			changed = true
		}
	}
	if !changed {
		return cur, false
	}
	return next, true
}
