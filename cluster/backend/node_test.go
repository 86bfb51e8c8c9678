package backend_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// The node entry decoder reads what anyone with write access to the
// backend path wrote: it must never panic, and what it accepts must be a
// valid node that encodes back to the same node.
func FuzzDecodeNode(f *testing.F) {
	f.Add([]byte(`{"id":"n1","host":"10.0.0.1","port":11800}`))
	f.Add([]byte(`{"id":"n1","host":"::1","port":1,"meta":{"zone":"a"}}`))
	f.Add([]byte(`{"id":"n1","host":"0.0.0.0","port":11800}`))
	f.Add([]byte(`{"id":"","host":"h","port":70000}`))
	f.Add([]byte(`{"id":"n1","host":"h","port":1.5}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := backend.DecodeNode(data)
		if err != nil {
			if n.ID != "" || n.Address != (cluster.Address{}) {
				t.Fatalf("a refused entry came with a node: %+v", n)
			}
			return
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("DecodeNode accepted an invalid node %+v: %v", n, err)
		}
		again, err := backend.EncodeNode(n)
		if err != nil {
			t.Fatal(err)
		}
		back, err := backend.DecodeNode(again)
		if err != nil || back.ID != n.ID || back.Address != n.Address || !maps.Equal(back.Meta, n.Meta) {
			t.Fatalf("%+v does not survive encoding: %+v, %v", n, back, err)
		}
	})
}

func TestEncodeDecodeNode(t *testing.T) {
	in := cluster.Node{ID: "a", Address: cluster.Address{Host: "::1", Port: 9}, Meta: map[string]string{"zone": "z1"}}
	data, err := backend.EncodeNode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := backend.DecodeNode(data)
	if err != nil || out.ID != "a" || out.Address != in.Address || out.Meta["zone"] != "z1" {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	if out.Address.String() != "[::1]:9" {
		t.Fatalf("IPv6 address string = %s", out.Address)
	}
	for _, bad := range []string{"", "not json", `{"id":"x"}`, `{"id":"x","host":"0.0.0.0","port":1}`, `[1,2]`} {
		if _, err := backend.DecodeNode([]byte(bad)); err == nil {
			t.Errorf("DecodeNode(%q) accepted", bad)
		}
	}
}

func TestCheckTakeover(t *testing.T) {
	self := cluster.Node{ID: "n1", Address: cluster.Address{Host: "10.0.0.1", Port: 11800}}
	if err := backend.CheckTakeover(self, self); err != nil {
		t.Fatalf("an entry at self's own address is self restarted: %v", err)
	}
	other := self
	other.Address.Port = 11801
	err := backend.CheckTakeover(self, other)
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
