package cluster_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/herd-go/herd/cluster"
)

func TestCheckTakeover(t *testing.T) {
	self := cluster.Node{ID: "n1", Address: cluster.Address{Host: "10.0.0.1", Port: 11800}}
	if err := cluster.CheckTakeover(self, self); err != nil {
		t.Fatalf("an entry at self's own address is self restarted: %v", err)
	}
	other := self
	other.Address.Port = 11801
	err := cluster.CheckTakeover(self, other)
	var dup *cluster.DuplicateIDError
	if !errors.Is(err, cluster.ErrDuplicateID) || !errors.As(err, &dup) || dup.ID != "n1" || dup.Ours != self.Address || dup.Theirs != other.Address {
		t.Fatalf("CheckTakeover at another address = %#v", err)
	}
	for _, want := range []string{"n1", "10.0.0.1:11800", "10.0.0.1:11801", "SW_CLUSTER_NODE_ID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}
