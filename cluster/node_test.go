package cluster_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/herd-go/herd/cluster"
)

func TestNodeValidate(t *testing.T) {
	ok := cluster.Node{ID: "a", Address: cluster.Address{Host: "127.0.0.1", Port: 1}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"", "0.0.0.0", "::", "0:0:0:0:0:0:0:0"} {
		n := ok
		n.Address.Host = host
		if err := n.Validate(); !errors.Is(err, cluster.ErrUnspecifiedHost) || !strings.Contains(err.Error(), "SW_CLUSTER_INTERNAL_COM_HOST") {
			t.Errorf("host %q: err = %v", host, err)
		}
	}
	n := ok
	n.ID = ""
	if n.Validate() == nil {
		t.Error("empty ID accepted")
	}
	n = ok
	n.Address.Port = 70000
	if n.Validate() == nil {
		t.Error("port 70000 accepted")
	}
}

func TestEncodeDecodeNode(t *testing.T) {
	in := cluster.Node{ID: "a", Address: cluster.Address{Host: "::1", Port: 9}, Meta: map[string]string{"zone": "z1"}}
	data, err := cluster.EncodeNode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cluster.DecodeNode(data)
	if err != nil || out.ID != "a" || out.Address != in.Address || out.Meta["zone"] != "z1" {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	if out.Address.String() != "[::1]:9" {
		t.Fatalf("IPv6 address string = %s", out.Address)
	}
	for _, bad := range []string{"", "not json", `{"id":"x"}`, `{"id":"x","host":"0.0.0.0","port":1}`, `[1,2]`} {
		if _, err := cluster.DecodeNode([]byte(bad)); err == nil {
			t.Errorf("DecodeNode(%q) accepted", bad)
		}
	}
}

func TestParseAddress(t *testing.T) {
	if a, err := cluster.ParseAddress("h:80"); err != nil || a != (cluster.Address{Host: "h", Port: 80}) {
		t.Fatal(a, err)
	}
	for _, bad := range []string{"h", "h:0", "h:x", "h:65536"} {
		if _, err := cluster.ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) accepted", bad)
		}
	}
}
