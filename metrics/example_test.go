package metrics_test

import (
	"context"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/inspect"
	"github.com/herd-go/herd/metrics"
	"github.com/herd-go/herd/remote"
)

// Register adds one collector, read at scrape time, to a registry of your
// own; serve it with promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).
func ExampleRegister() {
	ctx := context.Background()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := remote.NewServer()
	g := grpc.NewServer()
	srv.Register(g)
	go g.Serve(lis)
	defer g.Stop()
	self := cluster.Node{ID: "node-a", Address: cluster.Address{Host: "127.0.0.1", Port: lis.Addr().(*net.TCPAddr).Port}}
	coord := cluster.NewStandalone() // or cluster.New(ctx, cfg) on any backend
	defer coord.Close()
	if err := coord.RegisterRemote(ctx, self); err != nil {
		panic(err)
	}
	peers, err := remote.NewManager(coord, self, srv)
	if err != nil {
		panic(err)
	}
	defer peers.Close()
	in, err := inspect.New(inspect.Sources{Manager: peers, Coordinator: coord, Server: srv})
	if err != nil {
		panic(err)
	}
	defer in.Close()

	reg := prometheus.NewRegistry() // yours: herd never uses the global one
	if _, err := metrics.Register(reg, in); err != nil {
		panic(err)
	}
	families, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range families {
		if f.GetName() == "herd_members" || f.GetName() == "herd_registered" {
			fmt.Println(f.GetName(), f.GetMetric()[0].GetGauge().GetValue())
		}
	}
	// Output:
	// herd_members 1
	// herd_registered 1
}
