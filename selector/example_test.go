package selector_test

import (
	"fmt"

	"github.com/herd-go/herd/selector"
)

// peers is a sorted view of node IDs; a remote.Snapshot is one too.
type peers []string

func (p peers) Len() int        { return len(p) }
func (p peers) ID(i int) string { return p[i] }

func ExampleHashCode() {
	view := peers{"node-a", "node-b", "node-c"}
	key := selector.StringHash("user-42") // Java's String.hashCode, as SkyWalking computes it
	i, err := selector.HashCode{}.Select(key, view)
	if err != nil {
		panic(err)
	}
	fmt.Println(key, "->", view[i])
	// Output: -147182656 -> node-b
}

func ExampleRolling() {
	view := peers{"node-a", "node-b", "node-c"}
	var r selector.Rolling // the key is ignored: each call takes the next peer
	for range 4 {
		i, _ := r.Select(0, view)
		fmt.Print(view[i], " ")
	}
	fmt.Println()
	// Output: node-a node-b node-c node-a
}

func ExampleForeverFirst() {
	view := peers{"node-a", "node-b", "node-c"}
	i, _ := selector.ForeverFirst{}.Select(selector.StringHash("any key"), view)
	fmt.Println(view[i])
	// Output: node-a
}

func ExampleConsistent() {
	before := peers{"node-a", "node-b", "node-c"}
	after := peers{"node-a", "node-b", "node-c", "node-d"}
	moved := 0
	for k := range int32(1000) {
		i, _ := selector.Consistent{}.Select(k, before)
		j, _ := selector.Consistent{}.Select(k, after)
		if before[i] != after[j] {
			moved++
		}
	}
	// About 1/4 of the keys move to the newcomer; mod-N would move about 3/4.
	fmt.Println(moved > 150 && moved < 350)
	// Output: true
}

func ExampleHashCode_empty() {
	_, err := selector.HashCode{}.Select(1, peers{})
	fmt.Println(err)
	// Output: selector: no peers to select from
}

// Maglev looks a key up in a table of MaglevTableSize entries shared evenly
// among the peers. On a remote.Snapshot the Manager keeps the table, built
// once per view, so Select is a hash and a lookup; on any other Peers, as
// here, it builds the table on every call.
func ExampleMaglev() {
	view := peers{"node-a", "node-b", "node-c"}
	for _, user := range []string{"user-1", "user-2", "user-3", "user-4"} {
		i, err := selector.Maglev{}.Select(selector.StringHash(user), view)
		if err != nil {
			panic(err)
		}
		fmt.Println(user, "->", view[i])
	}
	// Output:
	// user-1 -> node-c
	// user-2 -> node-c
	// user-3 -> node-a
	// user-4 -> node-c
}
