package cluster

import (
	"context"
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
