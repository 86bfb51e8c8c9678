package backend

import (
	"encoding/json"
	"fmt"

	"github.com/herd-go/herd/cluster"
)

// wireNode is the JSON form backends store. Field names are part of the
// storage format shared by every herd version: change them only additively.
type wireNode struct {
	ID   string            `json:"id"`
	Host string            `json:"host"`
	Port int               `json:"port"`
	Meta map[string]string `json:"meta,omitempty"`
}

// EncodeNode returns the JSON payload a backend stores for n: the one wire
// format every backend that stores a node's entry as bytes shares, so that
// the herd command and other herd versions can read it.
func EncodeNode(n cluster.Node) ([]byte, error) {
	return json.Marshal(wireNode{ID: n.ID, Host: n.Address.Host, Port: n.Address.Port, Meta: n.Meta})
}

// DecodeNode parses a payload written by EncodeNode and validates it, so that
// an entry someone else wrote into herd's backend path is rejected rather
// than dialled.
func DecodeNode(data []byte) (cluster.Node, error) {
	var w wireNode
	if err := json.Unmarshal(data, &w); err != nil {
		return cluster.Node{}, fmt.Errorf("cluster: malformed node entry: %w", err)
	}
	n := cluster.Node{ID: w.ID, Address: cluster.Address{Host: w.Host, Port: w.Port}, Meta: w.Meta}
	if err := n.Validate(); err != nil {
		return cluster.Node{}, fmt.Errorf("cluster: invalid node entry: %w", err)
	}
	return n, nil
}

// CheckTakeover decides whether self may replace holder, a live entry
// under self's ID that this coordinator did not write. The same address
// is the same process restarted before its old entry expired (no second
// process can listen on that address), so it may; another address is a
// *cluster.DuplicateIDError.
func CheckTakeover(self, holder cluster.Node) error {
	if holder.Address == self.Address {
		return nil
	}
	return &cluster.DuplicateIDError{ID: self.ID, Ours: self.Address, Theirs: holder.Address}
}
