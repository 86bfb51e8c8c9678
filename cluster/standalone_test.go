package cluster_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/clustertest"
)

func TestStandaloneConformance(t *testing.T) {
	clustertest.Run(t, clustertest.Harness{
		NewCoordinator: func(*testing.T) cluster.Coordinator { return cluster.NewStandalone() },
		SingleNode:     true,
		Election:       &clustertest.Election{},
	})
}

// The default backend works with no backend package imported: this test
// binary imports none (clustertest imports none either).
func TestStandaloneIsTheDefaultWithNoImport(t *testing.T) {
	cfg, err := cluster.DefaultConfig(env())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*cluster.Standalone); !ok {
		t.Fatalf("default coordinator is %T", c)
	}
	got := cluster.Providers()
	if !slices.Contains(got, "standalone") {
		t.Fatalf("Providers() = %v: standalone is missing", got)
	}
	for _, backend := range []string{"etcd", "consul", "zookeeper", "nacos", "kubernetes"} {
		if slices.Contains(got, backend) {
			t.Fatalf("Providers() = %v holds %s, which this test binary does not import", got, backend)
		}
	}
}

// standalone applies internalComHost/internalComPort like every backend.
func TestStandaloneAdvertisedAddress(t *testing.T) {
	cfg, err := cluster.DefaultConfig(env("SW_CLUSTER_INTERNAL_COM_HOST", "node-a.example", "SW_CLUSTER_INTERNAL_COM_PORT", "12000"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := cfg.SelfNode("127.0.0.1:11800")
	if err != nil || n.Address.String() != "node-a.example:12000" {
		t.Fatalf("SelfNode = %v, %v; want node-a.example:12000", n.Address, err)
	}
	cfg, _ = cluster.DefaultConfig(env("SW_CLUSTER_INTERNAL_COM_HOST", "0.0.0.0"))
	if _, err := cfg.SelfNode("127.0.0.1:11800"); err == nil {
		t.Fatal("standalone accepted internalComHost 0.0.0.0")
	}
}

// TestMisspeltSelectorSuggestsTheBackend: SW_CLUSTER=etcdd names etcd.
func TestMisspeltSelectorSuggestsTheBackend(t *testing.T) {
	cfg, err := cluster.DefaultConfig(cluster.WithLookupEnv(func(k string) (string, bool) { return "etcdd", k == "SW_CLUSTER" }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cluster.New(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "did you mean etcd?") || !strings.Contains(err.Error(), "SW_CLUSTER") {
		t.Fatalf("New with selector etcdd: %v, want an error suggesting etcd and naming SW_CLUSTER", err)
	}
}

// The logger given to New is the coordinator's, for what is built over it.
func TestNewKeepsTheLogger(t *testing.T) {
	cfg, err := cluster.DefaultConfig(cluster.WithLookupEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		t.Fatal(err)
	}
	l := slog.New(slog.DiscardHandler)
	c, err := cluster.New(t.Context(), cfg, cluster.WithLogger(l))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := cluster.LoggerOf(c); got != l {
		t.Fatalf("LoggerOf(New(…, WithLogger(l))) = %p, want %p", got, l)
	}
	if got := cluster.LoggerOf(cluster.NewStandalone()); got != nil {
		t.Fatalf("LoggerOf(NewStandalone()) = %v, want nil", got)
	}
	if got := cluster.LoggerOf(42); got != nil {
		t.Fatalf("LoggerOf(42) = %v, want nil", got)
	}
}
