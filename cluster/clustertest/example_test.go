package clustertest_test

import (
	"context"
	"testing"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/clustertest"
	"github.com/herd-go/herd/cluster/etcd"
)

// A backend's test file runs the whole conformance suite against its real
// server: membership, protection, recovery, elections and slots. The
// harness says how to reach the server and what the backend cannot do.
// (Shown inside a function literal because an example cannot take a
// *testing.T; in a test file, this is func TestConformance(t *testing.T).)
func ExampleRun() {
	testConformance := func(t *testing.T) {
		cfg := etcd.DefaultConfig()
		cfg.Endpoints = "127.0.0.1:2379" // the test server
		clustertest.Run(t, clustertest.Harness{
			NewCoordinator: func(t *testing.T) cluster.Coordinator {
				c, err := etcd.New(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			Election: &clustertest.Election{},
		})
	}
	_ = testConformance
}
