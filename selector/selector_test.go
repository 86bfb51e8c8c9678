package selector_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/herd-go/herd/selector"
)

type ids []string

func (p ids) Len() int        { return len(p) }
func (p ids) ID(i int) string { return p[i] }

func makePeers(n int) ids {
	p := make(ids, n)
	for i := range p {
		p[i] = fmt.Sprintf("node-%03d", i)
	}
	return p
}

type picker interface {
	Select(key int32, peers selector.Peers) (int, error)
}

func allSelectors() map[string]picker {
	return map[string]picker{
		"HashCode":     selector.HashCode{},
		"Rolling":      &selector.Rolling{},
		"ForeverFirst": selector.ForeverFirst{},
		"Consistent":   selector.Consistent{},
		"Maglev":       selector.Maglev{},
	}
}

func TestEmptyViewIsAnError(t *testing.T) {
	for name, s := range allSelectors() {
		for _, peers := range []ids{nil, {}} {
			if _, err := s.Select(42, peers); !errors.Is(err, selector.ErrNoPeers) {
				t.Errorf("%s on empty view: err = %v, want ErrNoPeers", name, err)
			}
		}
	}
}

func TestIndexInRangeForEdgeKeys(t *testing.T) {
	keys := []int32{0, 1, -1, math.MaxInt32, math.MinInt32, math.MinInt32 + 1}
	for name, s := range allSelectors() {
		for n := 1; n <= 7; n++ {
			peers := makePeers(n)
			for _, k := range keys {
				i, err := s.Select(k, peers)
				if err != nil || i < 0 || i >= n {
					t.Fatalf("%s.Select(%d, %d peers) = %d, %v", name, k, n, i, err)
				}
			}
		}
	}
}

// TestHashCodeEveryKey checks that every int32 key maps into [0, N). The
// reference implementation fails this at Integer.MIN_VALUE. By default it
// walks every key within 2^20 of each boundary (MinInt32, 0, MaxInt32) and a
// stride across the rest; HERD_EXHAUSTIVE=1 walks all 2^32 keys (minutes).
func TestHashCodeEveryKey(t *testing.T) {
	step := int64(1021)
	if os.Getenv("HERD_EXHAUSTIVE") == "1" {
		step = 1
	}
	const window = 1 << 20
	for _, n := range []int{1, 3, 7, 10} {
		peers := makePeers(n)
		var h selector.HashCode
		check := func(k int64) {
			i, err := h.Select(int32(k), peers)
			if err != nil || i < 0 || i >= n {
				t.Fatalf("HashCode.Select(%d) with %d peers = %d, %v", k, n, i, err)
			}
		}
		for k := int64(math.MinInt32); k <= math.MaxInt32; k += step {
			check(k)
		}
		for _, centre := range []int64{math.MinInt32, 0, math.MaxInt32} {
			for k := max(centre-window, math.MinInt32); k <= min(centre+window, math.MaxInt32); k++ {
				check(k)
			}
		}
	}
}

func TestHashCodeMatchesSkyWalking(t *testing.T) {
	// Math.abs(hash) % size, as HashCodeSelector computes it, for keys whose
	// absolute value fits in a Java int.
	cases := []struct {
		key  int32
		n    int
		want int
	}{
		{0, 3, 0}, {5, 3, 2}, {-5, 3, 2}, {math.MaxInt32, 10, 7}, {-math.MaxInt32, 10, 7},
		// The reference throws here (index -8); herd uses |MinInt32| = 2147483648.
		{math.MinInt32, 10, 8},
	}
	for _, c := range cases {
		got, _ := selector.HashCode{}.Select(c.key, makePeers(c.n))
		if got != c.want {
			t.Errorf("HashCode.Select(%d, %d peers) = %d, want %d", c.key, c.n, got, c.want)
		}
	}
}

func TestStringHashMatchesJava(t *testing.T) {
	// Values computed by java.lang.String#hashCode.
	cases := map[string]int32{
		"":                   0,
		"a":                  97,
		"hello":              99162322,
		"Aa":                 2112,
		"BB":                 2112,
		"polygenelubricants": math.MinInt32,
		"😀":                  1772899, // UTF-16 code units 0xD83D, 0xDE00
		"\U00010000":         1770496, // the first supplementary code point: 0xD800, 0xDC00
		"\uFFFF":             65535,   // the last one that is a single code unit
	}
	for s, want := range cases {
		if got := selector.StringHash(s); got != want {
			t.Errorf("StringHash(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestRollingCyclesAndIsConcurrentSafe(t *testing.T) {
	var r selector.Rolling
	peers := makePeers(4)
	for want := 0; want < 8; want++ {
		if got, _ := r.Select(0, peers); got != want%4 {
			t.Fatalf("call %d: got %d, want %d", want, got, want%4)
		}
	}
	var wg sync.WaitGroup
	counts := make([]int64, 4)
	var mu sync.Mutex
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]int64, 4)
			for i := 0; i < 1000; i++ {
				idx, _ := r.Select(0, peers)
				local[idx]++
			}
			mu.Lock()
			for i, c := range local {
				counts[i] += c
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i, c := range counts {
		if c != 2000 {
			t.Errorf("peer %d got %d picks, want exactly 2000", i, c)
		}
	}
}

func TestUniformity(t *testing.T) {
	const keys = 200_000
	for _, name := range []string{"HashCode", "Consistent"} {
		s := allSelectors()[name]
		for _, n := range []int{3, 10} {
			peers := makePeers(n)
			counts := make([]int, n)
			rng := rand.New(rand.NewPCG(1, 2))
			for k := 0; k < keys; k++ {
				i, _ := s.Select(int32(rng.Uint32()), peers)
				counts[i]++
			}
			want := float64(keys) / float64(n)
			for i, c := range counts {
				if dev := math.Abs(float64(c)-want) / want; dev > 0.05 {
					t.Errorf("%s with %d peers: peer %d got %d keys, %.1f%% off the mean", name, n, i, c, dev*100)
				}
			}
		}
	}
}

// TestConsistentGolden pins Consistent's mapping: two herd versions (or two
// nodes running different versions) must route a key to the same owner, so
// the hash, the mixing and "highest score wins" may never change. The table
// was recorded from the implementation; a change here is a breaking change.
func TestConsistentGolden(t *testing.T) {
	peers := makePeers(5)
	golden := []struct {
		key  int32
		want string
	}{
		{0, "node-004"}, {1, "node-001"}, {-1, "node-000"}, {42, "node-000"}, {-42, "node-001"},
		{1000, "node-000"}, {123456789, "node-000"}, {math.MinInt32, "node-001"}, {math.MaxInt32, "node-002"},
		{selector.StringHash("user-42"), "node-001"}, {selector.StringHash("order-7"), "node-002"},
	}
	for _, g := range golden {
		if i, _ := (selector.Consistent{}).Select(g.key, peers); peers[i] != g.want {
			t.Errorf("Consistent routes key %d to %s; it has always gone to %s", g.key, peers[i], g.want)
		}
	}
	// Every key in a range, folded into one FNV-1a digest of the owners.
	h := uint64(14695981039346656037)
	for k := int32(-5000); k < 5000; k++ {
		i, _ := selector.Consistent{}.Select(k, peers)
		h ^= uint64(i)
		h *= 1099511628211
	}
	if h != 14278806914544471050 {
		t.Errorf("the owners of keys -5000..4999 changed (digest %d)", h)
	}
}

// Ties need two identical IDs; the lower index wins, so a view with a
// duplicate routes every key to its first copy.
func TestConsistentTieGoesToTheLowerIndex(t *testing.T) {
	for k := int32(-100); k < 100; k++ {
		if i, _ := (selector.Consistent{}).Select(k, ids{"twin", "twin"}); i != 0 {
			t.Fatalf("key %d went to index %d of two identical IDs, want 0", k, i)
		}
	}
}

// TestHashCodeGolden pins HashCode against SkyWalking's formula on a view
// of five: |key| mod 5.
func TestHashCodeGolden(t *testing.T) {
	peers := makePeers(5)
	for key, want := range map[int32]int{0: 0, 1: 1, -1: 1, 7: 2, -7: 2, 42: 2, math.MaxInt32: 2, math.MinInt32: 3} {
		if i, _ := (selector.HashCode{}).Select(key, peers); i != want {
			t.Errorf("HashCode(%d) over 5 = %d, want %d", key, i, want)
		}
	}
}

// remapFraction reports the share of keys whose owner ID changes when the
// view grows from n to n+1 peers.
func remapFraction(s picker, n int) float64 {
	before, after := makePeers(n), makePeers(n+1)
	const keys = 100_000
	moved := 0
	rng := rand.New(rand.NewPCG(3, 4))
	for k := 0; k < keys; k++ {
		key := int32(rng.Uint32())
		i, _ := s.Select(key, before)
		j, _ := s.Select(key, after)
		if before[i] != after[j] {
			moved++
		}
	}
	return float64(moved) / keys
}

func TestRemapFraction(t *testing.T) {
	for _, n := range []int{4, 9} {
		ideal := 1 / float64(n+1)
		if got := remapFraction(selector.Consistent{}, n); math.Abs(got-ideal) > 0.02 {
			t.Errorf("Consistent %d→%d peers moved %.3f of keys, want about %.3f", n, n+1, got, ideal)
		}
		modN := float64(n) / float64(n+1)
		if got := remapFraction(selector.HashCode{}, n); math.Abs(got-modN) > 0.02 {
			t.Errorf("HashCode %d→%d peers moved %.3f of keys, want about %.3f (mod-N)", n, n+1, got, modN)
		}
	}
}

func TestConsistentRemovalMovesOnlyTheLeaversKeys(t *testing.T) {
	full := makePeers(6)
	without := append(ids{}, full[:2]...)
	without = append(without, full[3:]...) // node-002 leaves
	for k := int32(0); k < 20_000; k++ {
		i, _ := selector.Consistent{}.Select(k, full)
		j, _ := selector.Consistent{}.Select(k, without)
		if full[i] != "node-002" && full[i] != without[j] {
			t.Fatalf("key %d moved from %s to %s though its owner stayed", k, full[i], without[j])
		}
	}
}

func benchmarkSelect(b *testing.B, s picker, n int) {
	peers := makePeers(n)
	var view selector.Peers = peers
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		k := int32(0)
		for pb.Next() {
			k++
			if _, err := s.Select(k, view); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHashCode(b *testing.B)     { benchmarkSelect(b, selector.HashCode{}, 16) }
func BenchmarkRolling(b *testing.B)      { benchmarkSelect(b, &selector.Rolling{}, 16) }
func BenchmarkForeverFirst(b *testing.B) { benchmarkSelect(b, selector.ForeverFirst{}, 16) }
func BenchmarkConsistent16(b *testing.B) { benchmarkSelect(b, selector.Consistent{}, 16) }
func BenchmarkConsistent128(b *testing.B) {
	benchmarkSelect(b, selector.Consistent{}, 128)
}
