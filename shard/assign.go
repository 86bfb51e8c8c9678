package shard

import (
	"cmp"
	"slices"
)

// Table gives every slot its owner, a node ID ("" for none). A table is
// never changed in place: Assign returns a new one.
type Table struct {
	// Epoch rises with every change of ownership.
	Epoch uint64
	// Owners[s] owns slot s.
	Owners []string
}

// Owner returns the owner of slot s, or "" for none or a slot out of range.
func (t Table) Owner(s int) string {
	if s < 0 || s >= len(t.Owners) {
		return ""
	}
	return t.Owners[s]
}

// Counts returns how many slots each owner holds.
func (t Table) Counts() map[string]int {
	counts := make(map[string]int)
	for _, o := range t.Owners {
		if o != "" {
			counts[o]++
		}
	}
	return counts
}

// Assign returns the table that follows prev once the alive nodes are
// alive, for a table of slots slots (prev may be empty, or of another
// size: a resize keeps what it can).
//
// It is deterministic (the order of alive does not matter, duplicates are
// ignored), balanced (each alive node owns ⌊S/N⌋ or ⌈S/N⌉ slots) and moves
// as few slots as balance allows: a slot stays with its owner while that
// owner is alive and within its share; the larger shares go to the nodes
// that already hold the most (ties to the lower ID), and the slots that
// must move go, in slot order, to the nodes below their share, in ID order.
// So a join moves to the newcomer exactly the slots it gets, and nothing
// between the others; a leave moves exactly the leaver's slots.
//
// With nothing changed it returns prev itself; otherwise the epoch is
// prev's plus one. With no node alive every slot is unowned.
func Assign(prev Table, alive []string, slots int) Table {
	ids := slices.Clone(alive)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > 0 && ids[0] == "" {
		ids = ids[1:]
	}
	next := Table{Epoch: prev.Epoch + 1, Owners: make([]string, slots)}
	if len(ids) == 0 {
		if slots == len(prev.Owners) && !slices.ContainsFunc(prev.Owners, func(o string) bool { return o != "" }) {
			return prev
		}
		return next
	}

	// Current holdings of the alive nodes, within the new size.
	held := make(map[string]int, len(ids))
	for _, id := range ids {
		held[id] = 0
	}
	for s := 0; s < slots && s < len(prev.Owners); s++ {
		if _, ok := held[prev.Owners[s]]; ok {
			held[prev.Owners[s]]++
		}
	}

	// Shares: ⌊S/N⌋ each, one more for S mod N nodes, those holding most.
	base, extra := slots/len(ids), slots%len(ids)
	byHolding := slices.Clone(ids)
	slices.SortStableFunc(byHolding, func(a, b string) int { return cmp.Compare(held[b], held[a]) })
	quota := make(map[string]int, len(ids))
	for i, id := range byHolding {
		quota[id] = base
		if i < extra {
			quota[id]++
		}
	}

	// Keep what fits the shares, in slot order; free the rest.
	kept := make(map[string]int, len(ids))
	var free []int
	for s := range slots {
		owner := ""
		if s < len(prev.Owners) {
			owner = prev.Owners[s]
		}
		if q, ok := quota[owner]; ok && kept[owner] < q {
			next.Owners[s] = owner
			kept[owner]++
			continue
		}
		free = append(free, s)
	}
	// Hand out the freed slots to the nodes below their share.
	i := 0
	for _, id := range ids {
		for ; kept[id] < quota[id]; kept[id]++ {
			next.Owners[free[i]] = id
			i++
		}
	}
	if slices.Equal(next.Owners, prev.Owners) {
		return prev
	}
	return next
}

// Moved counts the slots whose owner differs between two tables of the
// same size, not counting slots that were unowned in from.
func Moved(from, to Table) int {
	n := 0
	for s := range min(len(from.Owners), len(to.Owners)) {
		if from.Owners[s] != "" && from.Owners[s] != to.Owners[s] {
			n++
		}
	}
	return n
}
