package selector_test

import (
	"fmt"
	"testing"

	"github.com/herd-go/herd/selector"
)

// prepared is a view that keeps its Maglev table and its IDs' hashes, as
// remote.Snapshot does.
type prepared struct {
	ids
	table  *selector.MaglevTable
	hashes []uint64
}

func prepare(p ids) *prepared {
	v := &prepared{ids: p, table: selector.NewMaglevTable(p)}
	for _, id := range p {
		v.hashes = append(v.hashes, selector.IDHash(id))
	}
	return v
}

func (p *prepared) MaglevTable() *selector.MaglevTable { return p.table }
func (p *prepared) IDHash(i int) uint64                { return p.hashes[i] }

// TestMaglevBalance: every peer owns the table's entries evenly, so the
// load of uniform keys is within a few percent of the mean.
func TestMaglevBalance(t *testing.T) {
	for _, n := range []int{16, 128} {
		counts := make([]int, n)
		table := selector.NewMaglevTable(makePeers(n))
		for k := range int32(selector.MaglevTableSize * 64) {
			counts[table.Lookup(k)]++
		}
		hi := 0
		for _, c := range counts {
			hi = max(hi, c)
		}
		if ratio := float64(hi) / (float64(selector.MaglevTableSize*64) / float64(n)); ratio > 1.05 {
			t.Errorf("%d peers: max/avg load %.3f, want ≤ 1.05", n, ratio)
		}
	}
}

// TestMaglevMovement: a join of a ninth peer, or a leave of one of nine,
// moves little more than the ninth of keys it must.
func TestMaglevMovement(t *testing.T) {
	eight, nine := makePeers(8), makePeers(9)
	without := append(append(ids{}, nine[:4]...), nine[5:]...) // node-004 leaves
	moved := func(a, b ids) float64 {
		ta, tb := selector.NewMaglevTable(a), selector.NewMaglevTable(b)
		n := 0
		for k := range int32(200_000) {
			if a[ta.Lookup(k)] != b[tb.Lookup(k)] {
				n++
			}
		}
		return float64(n) / 200_000
	}
	for name, got := range map[string]float64{"8→9": moved(eight, nine), "9→8": moved(nine, without)} {
		if got > 1.1/9 || got < 1.0/9*0.9 {
			t.Errorf("%s moved %.4f of keys, want about 1/9 = %.4f and at most %.4f", name, got, 1.0/9, 1.1/9)
		}
	}
}

// TestMaglevPreparedMatchesUnprepared: a view's prepared table routes every
// key where the fallback (a table built for the call) does, with no
// allocation.
func TestMaglevPreparedMatchesUnprepared(t *testing.T) {
	plain := makePeers(7)
	view := prepare(plain)
	for k := int32(-2000); k < 2000; k++ {
		i, _ := selector.Maglev{}.Select(k, plain)
		j, _ := selector.Maglev{}.Select(k, view)
		if i != j {
			t.Fatalf("key %d: %d unprepared, %d prepared", k, i, j)
		}
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = selector.Maglev{}.Select(42, view) }); a != 0 {
		t.Errorf("Select on a prepared view allocates %.0f times", a)
	}
	if _, err := (selector.Maglev{}).Select(1, ids{}); err != selector.ErrNoPeers {
		t.Errorf("an empty view: err = %v", err)
	}
	if selector.NewMaglevTable(ids{}) != nil {
		t.Error("an empty view has a table")
	}
}

// TestMaglevGolden pins the mapping: herd versions must agree on it.
func TestMaglevGolden(t *testing.T) {
	peers := makePeers(5)
	h := uint64(14695981039346656037)
	table := selector.NewMaglevTable(peers)
	for k := int32(-5000); k < 5000; k++ {
		h ^= uint64(table.Lookup(k))
		h *= 1099511628211
	}
	if h != 4389932921624197867 {
		t.Errorf("the owners of keys -5000..4999 changed (digest %d)", h)
	}
}

// TestConsistentWithHashedPeersIsTheSame: kept ID hashes change nothing but
// the cost.
func TestConsistentWithHashedPeersIsTheSame(t *testing.T) {
	plain := makePeers(9)
	view := prepare(plain)
	for k := int32(-3000); k < 3000; k++ {
		i, _ := selector.Consistent{}.Select(k, plain)
		j, _ := selector.Consistent{}.Select(k, view)
		if i != j {
			t.Fatalf("key %d: %d from IDs, %d from kept hashes", k, i, j)
		}
	}
}

func BenchmarkMaglevSelect(b *testing.B) { benchPrepared(b, selector.Maglev{}) }

// benchPrepared times s on prepared views of 16 and 128 peers.
func benchPrepared(b *testing.B, s picker) {
	for _, n := range []int{16, 128} {
		view := prepare(makePeers(n))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			k := int32(0)
			for b.Loop() {
				k++
				if _, err := s.Select(k, view); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMaglevTableBuild(b *testing.B) {
	for _, n := range []int{16, 128, 1000} {
		peers := makePeers(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				selector.NewMaglevTable(peers)
			}
		})
	}
}

// BenchmarkConsistentPrepared: Consistent on a view that keeps its IDs'
// hashes (remote.Snapshot does).
func BenchmarkConsistentPrepared(b *testing.B) { benchPrepared(b, selector.Consistent{}) }
