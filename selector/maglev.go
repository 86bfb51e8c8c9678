package selector

import (
	"cmp"
	"slices"
)

// MaglevTableSize is the number of entries of a Maglev table, a prime. It is
// part of the mapping: keys map to entries modulo this size.
const MaglevTableSize = 16381

// Maglev is Maglev hashing (Eisenbud et al., NSDI 2016) over peer IDs: a
// lookup table of MaglevTableSize entries, each naming a peer, filled so that
// every peer owns MaglevTableSize/N entries give or take one (so load is even
// to within a fraction of a percent), and rebuilt when the view changes, which
// moves little more than the 1/N of keys a join or a leave must move. Select
// is a hash and a table lookup, O(1) and allocation-free, when the view keeps
// a prepared table (it implements MaglevPeers, as remote.Snapshot does);
// for any other Peers it builds the table on every call, which is correct
// but costs O(MaglevTableSize).
//
// The mapping, which never changes: peer i's offset is
// Mix64(IDHash(id)) mod M and its skip Mix64(IDHash(id) ^ 0x5bd1e9955bd1e995)
// mod (M-1) + 1, with M = MaglevTableSize (its preferences are offset,
// offset+skip, offset+2·skip, … mod M); peers take turns in order of
// (IDHash(id), position in the view) claiming their next free preferred
// entry until every entry is taken; key k looks up entry Mix64(uint64(uint32(k)) ^ 0x9e3779b97f4a7c15)
// mod M.
//
// Use Consistent instead where only the leaver's keys may move on a leave:
// Maglev may move a few more.
type Maglev struct{}

// MaglevPeers is a view that keeps its Maglev table, built once per view.
type MaglevPeers interface {
	Peers
	MaglevTable() *MaglevTable
}

// MaglevTable is a prepared Maglev lookup table for one view.
type MaglevTable struct {
	entries []uint32 // peer index per entry
}

// Select returns the index of the peer whose table entry key falls on.
func (Maglev) Select(key int32, peers Peers) (int, error) {
	if peers.Len() <= 0 {
		return 0, ErrNoPeers
	}
	var t *MaglevTable
	if p, ok := peers.(MaglevPeers); ok {
		t = p.MaglevTable()
	} else {
		t = NewMaglevTable(peers)
	}
	return t.Lookup(key), nil
}

// Lookup returns the index of the peer that owns key. The table must not
// be empty.
func (t *MaglevTable) Lookup(key int32) int {
	return int(t.entries[Mix64(uint64(uint32(key))^0x9e3779b97f4a7c15)%MaglevTableSize])
}

// NewMaglevTable builds the table of a view; nil for an empty one. Views of
// more than MaglevTableSize peers get a table over the first
// MaglevTableSize of them.
func NewMaglevTable(peers Peers) *MaglevTable {
	n := min(peers.Len(), MaglevTableSize)
	if n <= 0 {
		return nil
	}
	type pref struct {
		hash      uint64
		index     int
		pos, skip uint64 // its next preferred entry, and the step to the one after
	}
	prefs := make([]pref, n)
	for i := range prefs {
		h := IDHash(peers.ID(i))
		prefs[i] = pref{hash: h, index: i,
			pos:  Mix64(h) % MaglevTableSize,
			skip: Mix64(h^0x5bd1e9955bd1e995)%(MaglevTableSize-1) + 1}
	}
	slices.SortFunc(prefs, func(a, b pref) int { return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.index, b.index)) })
	// Entries hold index+1 while filling, so that the zeroed slice reads as
	// free, and are shifted down at the end.
	entries := make([]uint32, MaglevTableSize)
	for filled := 0; filled < MaglevTableSize; {
		for i := range prefs {
			p := &prefs[i]
			for entries[p.pos] != 0 {
				if p.pos += p.skip; p.pos >= MaglevTableSize {
					p.pos -= MaglevTableSize
				}
			}
			entries[p.pos] = uint32(p.index) + 1
			if p.pos += p.skip; p.pos >= MaglevTableSize {
				p.pos -= MaglevTableSize
			}
			if filled++; filled == MaglevTableSize {
				break
			}
		}
	}
	for i := range entries {
		entries[i]--
	}
	return &MaglevTable{entries: entries}
}
