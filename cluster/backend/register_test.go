package backend_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// A backend registered with Register gets its section decoded
// strictly over its defaults, and the decode error, not a nil Coordinator.
func TestRegister(t *testing.T) {
	type conf struct {
		Name string `yaml:"name"`
		Size int    `yaml:"size"`
	}
	var got conf
	backend.Register("x-configured", nil, func() conf { return conf{Name: "default", Size: 1} }, func(_ context.Context, c conf, _ ...cluster.Option) (*cluster.Standalone, error) {
		got = c
		if c.Size < 0 {
			return nil, errors.New("negative size")
		}
		return cluster.NewStandalone(), nil
	})
	load := func(doc string) (cluster.Coordinator, error) {
		cfg, err := cluster.LoadConfig([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return cluster.New(context.Background(), cfg)
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
	if got := backend.SplitList(" a:1, ,b:2 ,, "); strings.Join(got, "|") != "a:1|b:2" {
		t.Fatalf("SplitList = %q", got)
	}
	if got := backend.SplitList(" , "); got != nil {
		t.Fatalf("SplitList of blanks = %q, want none", got)
	}
}

// A backend whose documented defaults and Go defaults disagree does not
// start: Register panics in its init function.
func TestRegisterRefusesDriftingDefaults(t *testing.T) {
	type conf struct {
		Size int `yaml:"size"`
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "make them agree") {
			t.Fatalf("Register with drifting defaults: %v, want a panic saying so", r)
		}
	}()
	backend.Register("x-drift", []byte("size: ${SW_CLUSTER_X_SIZE:1}\n"), func() conf { return conf{Size: 2} },
		func(context.Context, conf, ...cluster.Option) (*cluster.Standalone, error) {
			return cluster.NewStandalone(), nil
		})
}
