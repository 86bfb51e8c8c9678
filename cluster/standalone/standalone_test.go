package standalone_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/clustertest"
	"github.com/herd-go/herd/cluster/standalone"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	clustertest.Run(t, clustertest.Harness{
		NewCoordinator: func(*testing.T) cluster.Coordinator { return standalone.New() },
		SingleNode:     true,
	})
}

func TestSelectedByDefault(t *testing.T) {
	cfg, err := cluster.DefaultConfig(cluster.WithLookupEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*standalone.Coordinator); !ok {
		t.Fatalf("default coordinator is %T", c)
	}
}
