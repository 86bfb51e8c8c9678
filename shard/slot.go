// Package shard splits work by key among the alive nodes: every key maps to
// one of a fixed number of slots, and a table gives each slot one owner,
// balanced across the alive nodes and changed as little as possible when
// they come and go.
//
// A Group (Join) is one node's part: every member follows the table, kept
// in a cluster.Records record named after the group, and campaigns in the
// election of the same name; the leader recomputes the table with Assign
// when the view has been still for RebalanceDelay, and writes it by
// compare-and-swap with its election term inside, so that once a later
// leader has written, a deposed one's writes fail.
//
// A move takes two writes: the leader first revokes the slot (it has no
// owner), and gives it to its new owner only once the old owner has
// acknowledged — which it does when every Hold on the slot is released — or
// has left the view and OwnershipTTL (plus a fifth) has passed, by which
// time a node that cannot read the table has given up all its slots. So two
// members never own a slot at once; a slot is ownerless for the time the
// old owner takes to let go, plus two reads and a write of the table.
package shard

import (
	"fmt"

	"github.com/herd-go/herd/selector"
)

// DefaultSlots is the slot count herd uses unless told otherwise.
const DefaultSlots = 1024

// MaxSlots bounds the slot count: a table holds one owner per slot.
const MaxSlots = 1 << 20

// Mapping maps keys to slots [0, Slots()). The zero value is not usable;
// build one with NewMapping.
//
// The hash is stable across herd versions, and tested against fixed
// values: FNV-1a (64-bit) over the key's bytes, then the SplitMix64
// finaliser, then modulo the slot count. Any slot count is allowed, not
// only powers of two.
type Mapping struct{ slots int }

// NewMapping returns a mapping onto slots slots, 1 to MaxSlots.
func NewMapping(slots int) (Mapping, error) {
	if slots < 1 || slots > MaxSlots {
		return Mapping{}, fmt.Errorf("shard: %d slots: want 1 to %d (default %d)", slots, MaxSlots, DefaultSlots)
	}
	return Mapping{slots: slots}, nil
}

// Slots is the number of slots.
func (m Mapping) Slots() int { return m.slots }

// Of returns the slot of a string key. It allocates nothing.
func (m Mapping) Of(key string) int {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return int(selector.Mix64(h) % uint64(m.slots))
}

// OfBytes returns the slot of a byte key: the same slot as Of(string(key)).
func (m Mapping) OfBytes(key []byte) int {
	h := uint64(14695981039346656037)
	for _, b := range key {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return int(selector.Mix64(h) % uint64(m.slots))
}

// OfHashCode returns |hash| mod Slots() for a Java hashCode, as SkyWalking's
// HashCodeSelector picks a peer and as selector.HashCode does (the absolute
// value taken in 64 bits, so Integer.MIN_VALUE maps to a slot too). For
// users who already route by a Java hashCode; OfJavaString hashes a string
// the JVM's way first.
func (m Mapping) OfHashCode(hash int32) int {
	abs := int64(hash)
	if abs < 0 {
		abs = -abs
	}
	return int(abs % int64(m.slots))
}

// OfJavaString returns the slot of Java's String.hashCode of key
// (selector.StringHash), so a Java component and a herd node agree.
func (m Mapping) OfJavaString(key string) int { return m.OfHashCode(selector.StringHash(key)) }
