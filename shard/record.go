package shard

import (
	"encoding/json"
	"errors"
	"fmt"
)

// state is the published slot table with what the two-step handover needs:
// the slots on their way from one owner to another, and which revocations
// each node has acknowledged.
type state struct {
	// term is the election term of the leader that wrote last. A leader
	// writes only over a record whose term is not above its own, and every
	// write is a compare-and-swap, so once a new leader has written, a
	// deposed leader's writes fail.
	term  uint64
	epoch uint64
	// owners[s] owns slot s ("" while it moves or before the first table).
	owners []string
	// from[s] is the owner slot s was revoked from, which must acknowledge
	// (or be gone) before the slot gets its new owner; "" when not moving.
	from []string
	// revokedAt[s] is the epoch of from[s]'s revocation.
	revokedAt []uint64
	// acks[id] is the latest epoch node id has applied, every slot it
	// lost by then released.
	acks map[string]uint64
}

func newState(slots int) state {
	return state{owners: make([]string, slots), from: make([]string, slots), revokedAt: make([]uint64, slots), acks: map[string]uint64{}}
}

func (s state) clone() state {
	c := state{term: s.term, epoch: s.epoch, owners: append([]string(nil), s.owners...), from: append([]string(nil), s.from...),
		revokedAt: append([]uint64(nil), s.revokedAt...), acks: make(map[string]uint64, len(s.acks))}
	for id, e := range s.acks {
		c.acks[id] = e
	}
	return c
}

// table is the state's ownership as a Table.
func (s state) table() Table { return Table{Epoch: s.epoch, Owners: s.owners} }

// wire is the record's JSON. Slots go in runs of equal values, so a table
// of 1,024 slots among a few nodes takes a few hundred bytes.
type wire struct {
	Term  uint64 `json:"term"`
	Epoch uint64 `json:"epoch"`
	Slots int    `json:"slots"`
	// Nodes lists every ID the runs refer to, by index.
	Nodes []string `json:"nodes"`
	// Owners: [first slot, count, node index] for every owned run.
	Owners [][3]int `json:"owners"`
	// Moving: [first slot, count, index of the revoked owner, epoch].
	Moving [][4]uint64       `json:"moving,omitempty"`
	Acks   map[string]uint64 `json:"acks,omitempty"`
}

func encode(s state) []byte {
	w := wire{Term: s.term, Epoch: s.epoch, Slots: len(s.owners), Acks: s.acks, Owners: [][3]int{}}
	index := map[string]int{}
	node := func(id string) int {
		i, ok := index[id]
		if !ok {
			i = len(w.Nodes)
			index[id] = i
			w.Nodes = append(w.Nodes, id)
		}
		return i
	}
	for first := 0; first < len(s.owners); {
		end := first + 1
		for end < len(s.owners) && s.owners[end] == s.owners[first] {
			end++
		}
		if s.owners[first] != "" {
			w.Owners = append(w.Owners, [3]int{first, end - first, node(s.owners[first])})
		}
		first = end
	}
	for first := 0; first < len(s.from); {
		end := first + 1
		for end < len(s.from) && s.from[end] == s.from[first] && s.revokedAt[end] == s.revokedAt[first] {
			end++
		}
		if s.from[first] != "" {
			w.Moving = append(w.Moving, [4]uint64{uint64(first), uint64(end - first), uint64(node(s.from[first])), s.revokedAt[first]})
		}
		first = end
	}
	data, _ := json.Marshal(w)
	return data
}

// errMalformed marks a record that is not a slot table herd wrote.
var errMalformed = errors.New("not a slot table")

func decode(data []byte) (state, error) {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return state{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if w.Slots < 1 || w.Slots > MaxSlots {
		return state{}, fmt.Errorf("%w: %d slots, want 1 to %d", errMalformed, w.Slots, MaxSlots)
	}
	for _, id := range w.Nodes {
		if id == "" {
			return state{}, fmt.Errorf("%w: an empty node ID", errMalformed)
		}
	}
	s := newState(w.Slots)
	s.term, s.epoch = w.Term, w.Epoch
	inRange := func(first, count, node uint64) bool {
		return count > 0 && first < uint64(w.Slots) && count <= uint64(w.Slots)-first && node < uint64(len(w.Nodes))
	}
	for _, r := range w.Owners {
		if r[0] < 0 || r[1] < 0 || r[2] < 0 || !inRange(uint64(r[0]), uint64(r[1]), uint64(r[2])) {
			return state{}, fmt.Errorf("%w: owner run %v out of range", errMalformed, r)
		}
		for i := r[0]; i < r[0]+r[1]; i++ {
			s.owners[i] = w.Nodes[r[2]]
		}
	}
	for _, r := range w.Moving {
		if !inRange(r[0], r[1], r[2]) {
			return state{}, fmt.Errorf("%w: moving run %v out of range", errMalformed, r)
		}
		for i := r[0]; i < r[0]+r[1]; i++ {
			if s.owners[i] != "" {
				return state{}, fmt.Errorf("%w: slot %d is both owned and moving", errMalformed, i)
			}
			s.from[i], s.revokedAt[i] = w.Nodes[r[2]], r[3]
		}
	}
	for id, e := range w.Acks {
		s.acks[id] = e
	}
	return s, nil
}
