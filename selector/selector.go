// Package selector picks, for one message, the index of the peer that should
// receive it from a sorted view of peers.
//
// HashCode, Rolling and ForeverFirst mirror Apache SkyWalking's
// HashCodeSelector, RollingSelector and ForeverFirstSelector. Consistent
// (rendezvous hashing) and Maglev (Maglev hashing) move only about 1/N of
// keys when a peer joins or leaves, where HashCode's mod N moves most.
//
// Every selector is safe for concurrent use. HashCode, Rolling, ForeverFirst
// and Consistent allocate nothing; Maglev allocates nothing on a view that
// keeps its table (a remote.Snapshot) and builds the table, allocating, on
// any other Peers. An empty view is reported as ErrNoPeers, never a panic or
// a division by zero.
//
// This package imports nothing from herd, so it can be used on its own.
package selector

import (
	"errors"
	"sync/atomic"
)

// ErrNoPeers is returned when the view to select from is empty.
var ErrNoPeers = errors.New("selector: no peers to select from")

// Selector picks the index in peers of the peer that receives a message
// with key. HashCode, *Rolling, ForeverFirst, Consistent and Maglev are
// selectors, and so is shard.Selector (a slot's owner); remote.Sender takes
// any of them.
type Selector interface {
	Select(key int32, peers Peers) (int, error)
}

var (
	_ Selector = HashCode{}
	_ Selector = (*Rolling)(nil)
	_ Selector = ForeverFirst{}
	_ Selector = Consistent{}
	_ Selector = Maglev{}
)

// Peers is the sorted, immutable view a selector picks from.
// ID must return a stable identifier of the i-th peer; Consistent and Maglev use it.
type Peers interface {
	Len() int
	ID(i int) string
}

// HashCode routes a key to peer |key| mod N, as SkyWalking's
// HashCodeSelector does with a message's remoteHashCode.
//
// Unlike the reference, which computes Math.abs(hash) % size and so returns a
// negative index for Integer.MIN_VALUE, the absolute value is taken in 64 bits:
// every int32 key maps to an index in [0, N). For every other key the result is
// identical to SkyWalking's.
type HashCode struct{}

// Select returns the index of the peer that owns key.
func (HashCode) Select(key int32, peers Peers) (int, error) {
	n := peers.Len()
	if n <= 0 {
		return 0, ErrNoPeers
	}
	abs := int64(key)
	if abs < 0 {
		abs = -abs
	}
	return int(abs % int64(n)), nil
}

// Rolling hands out peers in round-robin order, ignoring the key.
// The zero value is ready to use; a Rolling must not be copied after first use.
type Rolling struct {
	next atomic.Uint64
}

// Select returns the next peer index in round-robin order.
func (r *Rolling) Select(_ int32, peers Peers) (int, error) {
	n := peers.Len()
	if n <= 0 {
		return 0, ErrNoPeers
	}
	return int((r.next.Add(1) - 1) % uint64(n)), nil
}

// ForeverFirst always picks the first peer of the sorted view.
type ForeverFirst struct{}

// Select returns 0 for any non-empty view.
func (ForeverFirst) Select(_ int32, peers Peers) (int, error) {
	if peers.Len() <= 0 {
		return 0, ErrNoPeers
	}
	return 0, nil
}

// Consistent is a rendezvous (highest random weight) selector over peer IDs:
// each key goes to the peer whose ID scores highest for it. When a peer joins,
// only the keys it now wins move (about 1/N of them); when one leaves, only its
// own keys move. The cost is O(N) per Select: one mix per peer when the view
// keeps its peers' IDHash (HashedPeers, as remote.Snapshot does), else a
// hash of every ID too. For O(1), see Maglev.
type Consistent struct{}

// Select returns the index of the peer whose ID scores highest for key.
// Ties, which need two identical IDs, go to the lower index.
func (Consistent) Select(key int32, peers Peers) (int, error) {
	n := peers.Len()
	if n <= 0 {
		return 0, ErrNoPeers
	}
	k := Mix64(uint64(uint32(key)) ^ 0x9e3779b97f4a7c15)
	best, bestScore := 0, uint64(0)
	if hp, ok := peers.(HashedPeers); ok {
		for i := 0; i < n; i++ {
			if score := Mix64(hp.IDHash(i) ^ k); i == 0 || score > bestScore {
				best, bestScore = i, score
			}
		}
		return best, nil
	}
	for i := 0; i < n; i++ {
		score := Mix64(fnv1a(peers.ID(i)) ^ k)
		if i == 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	return best, nil
}

// IDHash is the hash of a peer ID that Consistent and Maglev start from
// (FNV-1a, 64 bits). It is part of both mappings, so it never changes. A view
// that keeps each peer's IDHash (HashedPeers) spares Consistent hashing the
// IDs on every Select.
func IDHash(id string) uint64 { return fnv1a(id) }

// HashedPeers is a view that keeps IDHash of each peer's ID.
type HashedPeers interface {
	Peers
	IDHash(i int) uint64
}

// fnv1a hashes s without allocating.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Mix64 is the SplitMix64 finaliser: it spreads FNV's weak low bits, so that
// rendezvous scores here and slots in package shard are uniform. It is part
// of both mappings, so it never changes.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// StringHash returns Java's String.hashCode of s, computed over UTF-16 code
// units as the JVM does, so keys hashed by a Java SkyWalking component and by
// a Go herd node route to the same peer.
func StringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}
