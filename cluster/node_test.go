package cluster_test

import (
	"encoding/json"
	"errors"
	"strconv"
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

// The edges of every range the checks enforce, each side.
func TestValidationBoundaries(t *testing.T) {
	for port, ok := range map[int]bool{0: false, 1: true, 65535: true, 65536: false} {
		n := cluster.Node{ID: "a", Address: cluster.Address{Host: "h", Port: port}}
		if (n.Validate() == nil) != ok {
			t.Errorf("Validate with port %d: ok=%v, want %v", port, !ok, ok)
		}
		if _, err := cluster.ParseAddress("h:" + strconv.Itoa(port)); (err == nil) != ok {
			t.Errorf("ParseAddress port %d: %v, want ok=%v", port, err, ok)
		}
	}
	// The first and last character of every class, and the ones just outside.
	for _, c := range "azAZ09" {
		if err := cluster.CheckID(string(c) + "x"); err != nil {
			t.Errorf("CheckID(%q): %v", string(c)+"x", err)
		}
		if err := cluster.CheckHost(string(c) + "x"); err != nil {
			t.Errorf("CheckHost(%q): %v", string(c)+"x", err)
		}
	}
	for _, c := range "`{@[/:" {
		if cluster.CheckID(string(c)+"x") == nil || cluster.CheckID("x"+string(c)) == nil {
			t.Errorf("CheckID accepts %q", string(c))
		}
		if cluster.CheckHost("x"+string(c)+"x") == nil {
			t.Errorf("CheckHost accepts %q inside a label", string(c))
		}
	}
	for _, h := range []string{"a-b", "a_b", "_a"} {
		if err := cluster.CheckHost(h); err != nil {
			t.Errorf("CheckHost(%q): %v", h, err)
		}
	}
	label63, label64 := strings.Repeat("a", 63), strings.Repeat("a", 64)
	name253 := strings.Repeat(label63+".", 3) + strings.Repeat("b", 61) // 192 + 61
	for host, ok := range map[string]bool{label63: true, label64: false, name253: true, name253 + "b": false, name253 + ".": true, "a-": false, "-a": false} {
		if (cluster.CheckHost(host) == nil) != ok {
			t.Errorf("CheckHost(%d bytes, %.10q…): want ok=%v", len(host), host, ok)
		}
	}
}

// TestNodeJSONIsTheReportsShape: a Node encodes with the member shape of
// herd's reports (lower-case names, the address whole and split) and
// decodes back.
func TestNodeJSONIsTheReportsShape(t *testing.T) {
	n := cluster.Node{ID: "a", Address: cluster.Address{Host: "10.0.0.1", Port: 11800}, Meta: map[string]string{"zone": "z"}, Self: true}
	data, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"a","address":"10.0.0.1:11800","host":"10.0.0.1","port":11800,"meta":{"zone":"z"},"self":true}`; string(data) != want {
		t.Fatalf("JSON %s, want %s", data, want)
	}
	var back cluster.Node
	if err := json.Unmarshal(data, &back); err != nil || back.ID != n.ID || back.Address != n.Address || back.Meta["zone"] != "z" || !back.Self {
		t.Fatalf("decoded %+v (%v), want %+v", back, err, n)
	}
	if err := json.Unmarshal([]byte(`{"id":"b","address":"10.0.0.2:1"}`), &back); err != nil || back.Address.Port != 1 {
		t.Fatalf("from the address alone: %+v (%v)", back, err)
	}
}
