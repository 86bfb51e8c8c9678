package shard

import (
	"slices"
	"testing"
)

// TestDiff: gains and losses across several words of a set, and against
// the zero Set, whose words are fewer.
func TestDiff(t *testing.T) {
	in := func(slots ...int) func(int) bool {
		return func(i int) bool { return slices.Contains(slots, i) }
	}
	a := newSet(1, 130, in(0, 5, 63, 64, 100, 129))
	b := newSet(2, 130, in(5, 63, 65, 101, 128, 129))
	cases := []struct {
		name         string
		from, to     Set
		gained, lost []int
	}{
		{"between two tables", a, b, []int{65, 101, 128}, []int{0, 64, 100}},
		{"back again", b, a, []int{0, 64, 100}, []int{65, 101, 128}},
		{"from nothing", Set{}, a, []int{0, 5, 63, 64, 100, 129}, nil},
		{"to nothing", a, Set{}, nil, []int{0, 5, 63, 64, 100, 129}},
		{"unchanged", a, a, nil, nil},
	}
	for _, c := range cases {
		gained, lost := diff(c.from, c.to)
		if !slices.Equal(gained, c.gained) || !slices.Equal(lost, c.lost) {
			t.Errorf("%s: gained %v, lost %v; want %v, %v", c.name, gained, lost, c.gained, c.lost)
		}
	}
	if got := a.Slots(); !slices.Equal(got, []int{0, 5, 63, 64, 100, 129}) || a.Len() != 6 {
		t.Errorf("Slots %v, Len %d", got, a.Len())
	}
}
