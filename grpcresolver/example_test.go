package grpcresolver_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/grpcresolver"
	"github.com/herd-go/herd/remote"
)

// New feeds one gRPC connection with the Manager's view: grpc-go's
// round_robin then spreads ordinary RPCs (here, health checks) over the
// live members and follows every change.
func ExampleNew() {
	ctx := context.Background()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := remote.NewServer()
	g := grpc.NewServer()
	srv.Register(g)
	srv.RegisterHealth(g) // grpc.health.v1: SERVING while the backend lists this node
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

	conn, err := grpc.NewClient("herd:///", // herd:///?service=orders keeps the nodes whose Meta["service"] is orders
		grpc.WithResolvers(grpcresolver.New(peers)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.GetStatus())
	// Output: SERVING
}
