package shard

import (
	"iter"
	"math/bits"
)

// Set is an immutable set of slots, as owned at one epoch of the table.
// The zero Set is empty.
type Set struct {
	epoch uint64
	words []uint64
	n     int
}

func newSet(epoch uint64, slots int, has func(int) bool) Set {
	s := Set{epoch: epoch, words: make([]uint64, (slots+63)/64)}
	for i := range slots {
		if has(i) {
			s.words[i/64] |= 1 << (i % 64)
			s.n++
		}
	}
	return s
}

// Epoch is the epoch of the table the set was taken from.
func (s Set) Epoch() uint64 { return s.epoch }

// Len is the number of slots in the set.
func (s Set) Len() int { return s.n }

// Contains reports whether slot is in the set.
func (s Set) Contains(slot int) bool {
	return slot >= 0 && slot/64 < len(s.words) && s.words[slot/64]&(1<<(slot%64)) != 0
}

// All yields the set's slots in increasing order.
func (s Set) All() iter.Seq[int] {
	return func(yield func(int) bool) {
		for w, word := range s.words {
			for word != 0 {
				b := bits.TrailingZeros64(word)
				if !yield(w*64 + b) {
					return
				}
				word &^= 1 << b
			}
		}
	}
}

// Slots returns the set's slots in increasing order.
func (s Set) Slots() []int {
	out := make([]int, 0, s.n)
	for slot := range s.All() {
		out = append(out, slot)
	}
	return out
}

// diff returns the slots in b and not in a, and those in a and not in b.
func diff(a, b Set) (gained, lost []int) {
	for i := range max(len(a.words), len(b.words)) {
		var wa, wb uint64
		if i < len(a.words) {
			wa = a.words[i]
		}
		if i < len(b.words) {
			wb = b.words[i]
		}
		for w := wb &^ wa; w != 0; w &^= 1 << bits.TrailingZeros64(w) {
			gained = append(gained, i*64+bits.TrailingZeros64(w))
		}
		for w := wa &^ wb; w != 0; w &^= 1 << bits.TrailingZeros64(w) {
			lost = append(lost, i*64+bits.TrailingZeros64(w))
		}
	}
	return gained, lost
}

// Change is what a subscriber learns when this node's slots change: the
// slots gained and lost since the set it was last given (coalesced: a slow
// subscriber gets the net change), and the set now owned.
type Change struct {
	Epoch  uint64
	Gained []int
	Lost   []int
	Owned  Set
}
