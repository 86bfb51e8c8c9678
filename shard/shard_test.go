package shard_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/herd-go/herd/selector"
	"github.com/herd-go/herd/shard"
)

func mapping(t *testing.T, slots int) shard.Mapping {
	t.Helper()
	m, err := shard.NewMapping(slots)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewMappingRefusesBadCounts(t *testing.T) {
	for _, n := range []int{0, -1, shard.MaxSlots + 1} {
		if _, err := shard.NewMapping(n); err == nil {
			t.Errorf("NewMapping(%d) accepted", n)
		}
	}
}

// The mapping is part of herd's compatibility promise: these values must
// never change.
func TestNewMappingAcceptsTheBounds(t *testing.T) {
	for _, n := range []int{1, shard.MaxSlots} {
		if m, err := shard.NewMapping(n); err != nil || m.Slots() != n {
			t.Errorf("NewMapping(%d) = %d slots, %v", n, m.Slots(), err)
		}
	}
}

func TestSlotsAreStable(t *testing.T) {
	m := mapping(t, shard.DefaultSlots)
	golden := map[string]int{"": 155, "a": 248, "order-42": 335, "user:1001": 803, "日本": 774}
	for key, want := range golden {
		if got := m.Of(key); got != want {
			t.Errorf("Of(%q) = %d, want %d: the key → slot mapping changed", key, got, want)
		}
		if got := m.OfBytes([]byte(key)); got != want {
			t.Errorf("OfBytes(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestSlotsAreEven(t *testing.T) {
	for _, slots := range []int{7, 1000, 1024} {
		m := mapping(t, slots)
		counts := make([]int, slots)
		const keys = 200_000
		for i := range keys {
			counts[m.Of(fmt.Sprintf("order-%d", i))]++
		}
		// Binomial counts: every slot within 5 standard deviations of the mean.
		mean := float64(keys) / float64(slots)
		limit := 5 * math.Sqrt(mean)
		for s, c := range counts {
			if math.Abs(float64(c)-mean) > limit {
				t.Fatalf("%d slots: slot %d got %d keys, mean %.0f ± %.0f", slots, s, c, mean, limit)
			}
		}
	}
}

// OfHashCode agrees with selector.HashCode over as many peers as slots, for
// every edge of the int32 range.
func TestOfHashCodeMatchesHashCodeSelector(t *testing.T) {
	m := mapping(t, 10)
	peers := make(peerList, 10)
	for _, h := range []int32{0, 1, -1, 9, 10, -10, 1<<31 - 1, -1 << 31, selector.StringHash("service-a")} {
		want, _ := selector.HashCode{}.Select(h, peers)
		if got := m.OfHashCode(h); got != want {
			t.Errorf("OfHashCode(%d) = %d, selector.HashCode picks %d", h, got, want)
		}
	}
	if m.OfJavaString("service-a") != m.OfHashCode(selector.StringHash("service-a")) {
		t.Error("OfJavaString differs from OfHashCode(StringHash)")
	}
}

type peerList []string

func (p peerList) Len() int        { return len(p) }
func (p peerList) ID(i int) string { return p[i] }

func TestOfAllocatesNothing(t *testing.T) {
	m := mapping(t, shard.DefaultSlots)
	key, b := "a-key", []byte("a-key")
	if n := testing.AllocsPerRun(100, func() { _ = m.Of(key); _ = m.OfBytes(b) }); n != 0 {
		t.Errorf("%v allocs per call", n)
	}
}

// check verifies that tb is balanced over alive and owned only by them.
func check(t *testing.T, tb shard.Table, alive []string, slots int) {
	t.Helper()
	if len(tb.Owners) != slots {
		t.Fatalf("%d owners for %d slots", len(tb.Owners), slots)
	}
	counts := tb.Counts()
	if len(alive) == 0 {
		if len(counts) != 0 {
			t.Fatalf("owners %v with nobody alive", counts)
		}
		return
	}
	lo, hi := slots/len(alive), (slots+len(alive)-1)/len(alive)
	total := 0
	for id, c := range counts {
		if !slices.Contains(alive, id) {
			t.Fatalf("slots owned by %q, who is not alive", id)
		}
		total += c
	}
	for _, id := range alive {
		if c := counts[id]; c < lo || c > hi {
			t.Fatalf("%s owns %d slots, want %d..%d (%d slots, %d nodes)", id, c, lo, hi, slots, len(alive))
		}
	}
	if total != slots {
		t.Fatalf("%d of %d slots owned", total, slots)
	}
}

// Random joins and leaves: every table is balanced, a join moves only the
// newcomer's share to it, a leave moves only the leaver's slots, and the
// order of the alive list does not matter.
func TestAssignProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, slots := range []int{1, 3, 7, 64, 1000, 1024} {
		var tb shard.Table
		var alive []string
		next := 0
		for step := range 300 {
			prev := tb
			var joined, left string
			if len(alive) == 0 || len(alive) < 12 && rng.IntN(2) == 0 {
				joined = fmt.Sprintf("node-%08x-%d", rng.Uint32(), next) // random order: a newcomer may sort first
				next++
				alive = append(alive, joined)
			} else {
				i := rng.IntN(len(alive))
				left = alive[i]
				alive = slices.Delete(alive, i, i+1)
			}
			shuffled := slices.Clone(alive)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			tb = shard.Assign(prev, shuffled, slots)
			check(t, tb, alive, slots)
			if again := shard.Assign(prev, alive, slots); !slices.Equal(again.Owners, tb.Owners) {
				t.Fatalf("%d slots, step %d: the alive list's order changed the table", slots, step)
			}
			moved := shard.Moved(prev, tb)
			for s := range slots {
				was, is := prev.Owner(s), tb.Owner(s)
				if was == is || was == "" {
					continue
				}
				if joined != "" && is != joined {
					t.Fatalf("%d slots, step %d: %s joined, and slot %d moved from %s to %s", slots, step, joined, s, was, is)
				}
				if left != "" && was != left {
					t.Fatalf("%d slots, step %d: %s left, and slot %d moved from %s to %s", slots, step, left, s, was, is)
				}
			}
			if joined != "" && len(prev.Counts()) > 0 {
				// The least a newcomer can get in a balanced table, and all
				// that moves.
				if got, least := tb.Counts()[joined], slots/len(alive); got != least || moved != least {
					t.Fatalf("%d slots, step %d: the newcomer got %d slots and %d moved, want %d (⌊S/N⌋)", slots, step, got, moved, least)
				}
			}
			if left != "" && moved != prev.Counts()[left] {
				t.Fatalf("%d slots, step %d: %d slots moved when %s left with %d", slots, step, moved, left, prev.Counts()[left])
			}
			if same := shard.Assign(tb, alive, slots); same.Epoch != tb.Epoch {
				t.Fatalf("%d slots, step %d: an unchanged membership raised the epoch", slots, step)
			}
		}
	}
}

func TestAssignEdges(t *testing.T) {
	tb := shard.Assign(shard.Table{}, []string{"b", "a", "a", ""}, 5)
	check(t, tb, []string{"a", "b"}, 5)
	if tb.Epoch != 1 {
		t.Errorf("first table's epoch %d, want 1", tb.Epoch)
	}
	none := shard.Assign(tb, nil, 5)
	check(t, none, nil, 5)
	if none.Epoch != 2 || shard.Assign(none, nil, 5).Epoch != 2 {
		t.Error("an emptied table must raise the epoch once, then stay")
	}
	// A resize keeps the slots that still exist with their owners where
	// balance allows.
	bigger := shard.Assign(tb, []string{"a", "b"}, 8)
	check(t, bigger, []string{"a", "b"}, 8)
	for s := range 5 {
		if bigger.Owner(s) != tb.Owner(s) {
			t.Errorf("resize moved slot %d from %s to %s", s, tb.Owner(s), bigger.Owner(s))
		}
	}
	if tb.Owner(-1) != "" || tb.Owner(5) != "" || tb.Owner(0) == "" || tb.Owner(4) == "" {
		t.Error("Owner out of range is not empty, or in range empty")
	}
	// A smaller table counts only the slots that remain: b holds two of
	// the first three, so b keeps them and a gets the third's share.
	smaller := shard.Assign(shard.Table{Owners: []string{"b", "a", "b", "a", "a"}}, []string{"a", "b"}, 3)
	if want := []string{"b", "a", "b"}; !slices.Equal(smaller.Owners, want) {
		t.Errorf("shrinking [b a b a a] to 3 slots gave %v, want %v", smaller.Owners, want)
	}
}
