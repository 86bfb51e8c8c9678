package bench

import (
	"fmt"
	"strconv"
	"testing"

	jump "github.com/dgryski/go-jump"
	rendezvous "github.com/dgryski/go-rendezvous"
	"github.com/kkdai/maglev"

	"github.com/herd-go/herd/selector"
)

// view is a sorted view of peer IDs that keeps what remote.Snapshot keeps
// for the selectors: each ID's hash and the Maglev table.
type view struct {
	ids    []string
	hashes []uint64
	table  *selector.MaglevTable
}

func newView(n int) *view {
	v := &view{}
	for i := range n {
		id := fmt.Sprintf("node-%03d", i)
		v.ids = append(v.ids, id)
		v.hashes = append(v.hashes, selector.IDHash(id))
	}
	v.table = selector.NewMaglevTable(v)
	return v
}

func (v *view) Len() int                                 { return len(v.ids) }
func (v *view) ID(i int) string                          { return v.ids[i] }
func (v *view) IDHash(i int) uint64                      { return v.hashes[i] }
func (v *view) MaglevTable() *selector.MaglevTable       { return v.table }
func (v *view) rendezvousHash(s string) uint64           { return selector.IDHash(s) }
func keyString(i int) string                             { return strconv.Itoa(i) }
func bench(f func(b *testing.B)) testing.BenchmarkResult { return testing.Benchmark(f) }

// TestSelectors: one Select per key, each library in its own form (herd's
// take int32 keys; go-rendezvous and kkdai/maglev string keys, which they
// hash; go-jump a uint64 key), at 16 and 128 peers, alternated.
// dgryski/go-maglev is not available from the Go module proxy here, so
// kkdai/maglev stands in as the Maglev library.
func TestSelectors(t *testing.T) {
	rounds := envInt("HERD_BENCH_ROUNDS", 5)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = keyString(i)
	}
	for _, n := range []int{16, 128} {
		v := newView(n)
		rdv := rendezvous.New(v.ids, v.rendezvousHash)
		mg, err := maglev.NewMaglev(v.ids, selector.MaglevTableSize)
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			f    func(b *testing.B)
		}{
			{"herd Maglev (table kept by the view)", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					_, _ = selector.Maglev{}.Select(int32(i), v)
				}
			}},
			{"herd Consistent (rendezvous, ID hashes kept)", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					_, _ = selector.Consistent{}.Select(int32(i), v)
				}
			}},
			{"kkdai/maglev Get", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					_, _ = mg.Get(keys[i&1023])
				}
			}},
			{"dgryski/go-rendezvous Lookup", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					_ = rdv.Lookup(keys[i&1023])
				}
			}},
			{"dgryski/go-jump Hash", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					_ = jump.Hash(uint64(i), n)
				}
			}},
		}
		ns := make([][]float64, len(cases))
		allocs := make([]int64, len(cases))
		for range rounds {
			for i, c := range cases {
				r := bench(c.f)
				ns[i] = append(ns[i], float64(r.T.Nanoseconds())/float64(r.N))
				allocs[i] = r.AllocsPerOp()
			}
		}
		tb := newTable(fmt.Sprintf("Selectors: one Select, %d peers (%d rounds, medians)", n, rounds),
			"", "ns/op", "allocs/op", "÷ herd Maglev")
		base := median(ns[0])
		for i, c := range cases {
			tb.add(c.name, fmt.Sprintf("%.1f", median(ns[i])), allocs[i], ratio(median(ns[i]), base))
		}
		tb.print()
	}

	// Building the view's table is off the send path (once per published
	// view); here is what it costs.
	tb := newTable("Maglev table build, once per view", "", "herd", "kkdai/maglev", "herd ÷ kkdai")
	for _, n := range []int{16, 128, 1000} {
		v := newView(n)
		var h, k []float64
		for range rounds {
			r := bench(func(b *testing.B) {
				for b.Loop() {
					selector.NewMaglevTable(v)
				}
			})
			h = append(h, float64(r.NsPerOp()))
			r = bench(func(b *testing.B) {
				for b.Loop() {
					_, _ = maglev.NewMaglev(v.ids, selector.MaglevTableSize)
				}
			})
			k = append(k, float64(r.NsPerOp()))
		}
		tb.add(fmt.Sprintf("%d peers", n), fmt.Sprintf("%.2f ms", median(h)/1e6), fmt.Sprintf("%.2f ms", median(k)/1e6), ratio(median(h), median(k)))
	}
	tb.print()
}
