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

// RegisterSection refuses what would make the configuration lie: a taken
// or reserved name, a body that is not a mapping, and defaults that the
// YAML does not give.
func TestRegisterSectionRefusesMistakes(t *testing.T) {
	type conf struct {
		Size int `yaml:"size"`
	}
	body := []byte("# how many\nsize: ${SW_CLUSTER_X_SIZE:3}\n")
	for name, call := range map[string]func(){
		"empty name":      func() { RegisterSection("", body, conf{Size: 3}) },
		"reserved name":   func() { RegisterSection("selector", body, conf{Size: 3}) },
		"taken name":      func() { RegisterSection("standalone", body, conf{Size: 3}) },
		"not a mapping":   func() { RegisterSection("x-list", []byte("[1, 2]"), conf{}) },
		"drift":           func() { RegisterSection("x-drift", body, conf{Size: 4}) },
		"unknown key":     func() { RegisterSection("x-key", []byte("sise: 3\n"), conf{Size: 3}) },
		"not a struct":    func() { RegisterSection("x-int", body, 3) },
		"nil defaults":    func() { RegisterSection("x-nil", body, nil) },
		"bad YAML":        func() { RegisterSection("x-yaml", []byte("size: [\n"), conf{}) },
		"bad placeholder": func() { RegisterSection("x-ph", []byte("size: ${SW_X\n"), conf{}) },
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
	RegisterSection("x-good", body, conf{Size: 3})
	if !strings.Contains(string(DefaultYAML()), "  x-good:\n    # how many\n    size: ${SW_CLUSTER_X_SIZE:3}\n") {
		t.Fatalf("the section is not in the built-in configuration:\n%s", DefaultYAML())
	}
	if advertises("x-good") {
		t.Fatal("a section with no backend has the advertised address's keys")
	}
}
