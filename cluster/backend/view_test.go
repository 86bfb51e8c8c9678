package backend

import (
	"testing"

	"github.com/herd-go/herd/cluster"
)

func TestMalformedCountsEachWriteOnce(t *testing.T) {
	var m Malformed
	if !m.Report("a", 1) || m.Report("a", 1) {
		t.Fatal("the same write was counted twice, or not at all")
	}
	if !m.Report("a", 2) {
		t.Fatal("a rewrite was not counted")
	}
	m.Forget("a")
	if !m.Report("a", 2) {
		t.Fatal("a forgotten key was not counted again")
	}
	m.Report("b", 1)
	m.Retain(func(k string) bool { return k == "b" })
	if !m.Report("a", 2) || m.Report("b", 1) {
		t.Fatal("Retain kept the wrong keys")
	}
	if m.Count() != 5 {
		t.Fatalf("Count = %d, want 5", m.Count())
	}
}

func TestSortedMarksSelf(t *testing.T) {
	nodes := Sorted([]cluster.Node{{ID: "c"}, {ID: "a", Self: true}, {ID: "b"}}, "b")
	if nodes[0].ID != "a" || nodes[1].ID != "b" || nodes[2].ID != "c" || nodes[0].Self || !nodes[1].Self {
		t.Fatalf("got %+v", nodes)
	}
	for _, n := range Sorted(nodes, "") {
		if n.Self {
			t.Fatalf("an empty self ID marked %q", n.ID)
		}
	}
}
