package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestConfigErrorLocation(t *testing.T) {
	if msg := (&ConfigError{Key: "k", Value: "v", Accepted: "a", File: "app.yml"}).Error(); strings.Contains(msg, "app.yml") {
		t.Errorf("a file with no line is printed as a location: %s", msg)
	}
	if msg := (&ConfigError{Key: "k", Value: "v", Accepted: "a", File: "app.yml", Line: 3}).Error(); !strings.HasPrefix(msg, "config: app.yml:3: k = ") {
		t.Errorf("location missing: %s", msg)
	}
}

func TestBackoffOr(t *testing.T) {
	def := Backoff{Initial: 1, Max: 9}
	for in, want := range map[Backoff]Backoff{{}: def, {Initial: 2}: {Initial: 2, Max: 9}, {Max: 3}: {Initial: 1, Max: 3}, {Initial: -1, Max: -1}: def, {Initial: 4, Max: 5}: {Initial: 4, Max: 5}} {
		if got := in.Or(def); got != want {
			t.Errorf("%+v.Or(%+v) = %+v, want %+v", in, def, got, want)
		}
	}
}

func TestRegisterProviderRefusesMistakes(t *testing.T) {
	f := func(context.Context, Section, ...Option) (Coordinator, error) { return NewStandalone(), nil }
	for name, call := range map[string]func(){
		"empty name":  func() { RegisterProvider("", f) },
		"nil factory": func() { RegisterProvider("x-nil", nil) },
		"taken name":  func() { RegisterProvider("standalone", f) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			call()
		}()
	}
}

func TestMarkSelf(t *testing.T) {
	nodes := []Node{{ID: "a", Self: true}, {ID: "b"}, {ID: ""}}
	MarkSelf(nodes, "b")
	if nodes[0].Self || !nodes[1].Self || nodes[2].Self {
		t.Fatalf("%+v", nodes)
	}
	MarkSelf(nodes, "")
	for _, n := range nodes {
		if n.Self {
			t.Fatalf("an empty self ID marked %q", n.ID)
		}
	}
}

// A backend registered with RegisterConfigured gets its section decoded
// strictly over its defaults, and the decode error, not a nil Coordinator.
func TestRegisterConfigured(t *testing.T) {
	type conf struct {
		Name string `yaml:"name"`
		Size int    `yaml:"size"`
	}
	var got conf
	RegisterConfigured("x-configured", func() conf { return conf{Name: "default", Size: 1} }, func(_ context.Context, c conf, _ ...Option) (*Standalone, error) {
		got = c
		if c.Size < 0 {
			return nil, errors.New("negative size")
		}
		return NewStandalone(), nil
	})
	load := func(doc string) (Coordinator, error) {
		cfg, err := LoadConfig([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return New(context.Background(), cfg)
	}
	if c, err := load("cluster:\n  selector: x-configured\n  x-configured:\n    size: 3\n"); err != nil || got != (conf{"default", 3}) {
		t.Fatalf("decoded %+v, %v", got, err)
	} else {
		c.Close()
	}
	if _, err := load("cluster:\n  selector: x-configured\n  x-configured:\n    sise: 3\n"); err == nil || !strings.Contains(err.Error(), "did you mean cluster.x-configured.size?") {
		t.Fatalf("misspelt key: %v", err)
	}
	if c, err := load("cluster:\n  selector: x-configured\n  x-configured:\n    size: -1\n"); err == nil || c != nil {
		t.Fatalf("a failing build returned %v, %v; want a nil Coordinator and the error", c, err)
	}
}

func TestSplitList(t *testing.T) {
	if got := SplitList(" a:1, ,b:2 ,, "); strings.Join(got, "|") != "a:1|b:2" {
		t.Fatalf("SplitList = %q", got)
	}
	if got := SplitList(" , "); got != nil {
		t.Fatalf("SplitList of blanks = %q, want none", got)
	}
}

func TestParseAddressList(t *testing.T) {
	got, err := ParseAddressList("a:1, [::1]:2")
	if err != nil || len(got) != 2 || got[1].String() != "[::1]:2" {
		t.Fatalf("%v, %v", got, err)
	}
	for _, bad := range []string{"", " , ", "a:1,b", "a:1,not a host:2"} {
		if _, err := ParseAddressList(bad); err == nil {
			t.Errorf("ParseAddressList(%q) accepted", bad)
		}
	}
}

// Decode's other branches: a struct that takes no keys, a type the switch
// does not name (decoded by yaml), and a placeholder error inside a list.
func TestDecodeOtherShapes(t *testing.T) {
	cfg, err := LoadConfig([]byte("cluster:\n  selector: standalone\n  x-shapes:\n    ratio: 0.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	var none struct{}
	if err := cfg.Section("x-shapes").Decode(&none); err == nil || !strings.Contains(err.Error(), "cluster.x-shapes takes no keys") {
		t.Errorf("a struct with no keys: %v", err)
	}
	var f struct {
		Ratio float64 `yaml:"ratio"`
	}
	if err := cfg.Section("x-shapes").Decode(&f); err != nil || f.Ratio != 0.5 {
		t.Errorf("float: %v, %v", f.Ratio, err)
	}
	cfg, _ = LoadConfig([]byte("cluster:\n  selector: standalone\n  x-shapes:\n    ratio: abc\n"))
	if err := cfg.Section("x-shapes").Decode(&f); err == nil || !strings.Contains(err.Error(), "a value of type float64") {
		t.Errorf("bad float: %v", err)
	}
	if _, err := LoadConfig([]byte("cluster:\n  selector: standalone\n  x-shapes:\n    list: [a, \"${X\"]\n")); err == nil || !strings.Contains(err.Error(), "cluster.x-shapes.list[1]") {
		t.Errorf("placeholder error in a list: %v", err)
	}
}

func init() {
	RegisterProvider("x-shapes", func(context.Context, Section, ...Option) (Coordinator, error) { return NewStandalone(), nil })
}
