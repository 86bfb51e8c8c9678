package grpcresolver_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/herd-go/herd/cluster/etcd"
	"github.com/herd-go/herd/grpcresolver"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
	"github.com/herd-go/herd/internal/testsupport/testnode"
)

// dial connects to target through the herd resolver over n's view, with
// round_robin.
func dial(t *testing.T, n *testnode.Node, target string, opts ...grpcresolver.Option) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(target,
		grpc.WithResolvers(grpcresolver.New(n.Manager, opts...)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// reached makes calls ordinary RPCs (grpc.health.v1 Check, a real service
// every node serves) and returns how many each server address answered.
func reached(t *testing.T, conn *grpc.ClientConn, calls int) map[string]int {
	t.Helper()
	hc := healthpb.NewHealthClient(conn)
	got := map[string]int{}
	for range calls {
		var p peer.Peer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		got[p.Addr.String()]++
	}
	return got
}

func TestRoundRobinReachesEveryMemberAndDropsOneThatLeaves(t *testing.T) {
	leakcheck.Register(t)
	nodes := testnode.Cluster(t, 3, testnode.Options{Health: true})
	conn := dial(t, nodes[0], "herd:///")
	clusterwait.WaitUntil(t, 10*time.Second, "calls to reach all three nodes", func() bool { return len(reached(t, conn, 9)) == 3 })
	got := reached(t, conn, 30)
	for _, n := range nodes {
		if got[n.Self.Address.String()] != 10 {
			t.Fatalf("30 round-robin calls: %v, want 10 on each node", got)
		}
	}

	// The node leaves the cluster (its coordinator deregisters) but its gRPC
	// server keeps serving: only the resolver can stop the calls to it.
	leaving := nodes[2]
	if err := leaving.Coord.Close(); err != nil {
		t.Fatal(err)
	}
	testnode.WaitViews(t, nodes[:2], 2)
	clusterwait.WaitUntil(t, 5*time.Second, "calls to stop reaching the node that left", func() bool {
		return reached(t, conn, 6)[leaving.Self.Address.String()] == 0
	})
	got = reached(t, conn, 20)
	if len(got) != 2 || got[leaving.Self.Address.String()] != 0 {
		t.Fatalf("after a leave: %v, want the two members only", got)
	}
}

func TestMetadataFilterAndAddressFromMeta(t *testing.T) {
	leakcheck.Register(t)
	endpoint := testnode.Etcd(t)
	orders := []*testnode.Node{
		testnode.Start(t, endpoint, testnode.Options{Health: true, Meta: map[string]string{"service": "orders"}}),
		testnode.Start(t, endpoint, testnode.Options{Health: true, Meta: map[string]string{"service": "orders"}}),
	}
	billing := testnode.Start(t, endpoint, testnode.Options{Health: true, Meta: map[string]string{"service": "billing"}})
	all := append(orders, billing)
	testnode.WaitViews(t, all, 3)

	conn := dial(t, billing, "herd:///?service=orders")
	got := reached(t, conn, 20)
	if len(got) != 2 || got[orders[0].Self.Address.String()] == 0 || got[orders[1].Self.Address.String()] == 0 {
		t.Fatalf("herd:///?service=orders reached %v, want both orders nodes only", got)
	}

	// A service on another port than herd's transport is dialled at the
	// address a metadata key carries; nodes without the key are left out.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := grpc.NewServer()
	healthpb.RegisterHealthServer(app, health.NewServer())
	go func() { _ = app.Serve(lis) }()
	defer app.Stop()
	withApp := testnode.Start(t, endpoint, testnode.Options{Meta: map[string]string{"app-grpc": lis.Addr().String()}})
	testnode.WaitViews(t, append(all, withApp), 4)
	got = reached(t, dial(t, billing, "herd:///", grpcresolver.WithAddressFromMeta("app-grpc")), 5)
	if len(got) != 1 || got[lis.Addr().String()] != 5 {
		t.Fatalf("WithAddressFromMeta reached %v, want only %s", got, lis.Addr())
	}
}

func TestBadTargets(t *testing.T) {
	leakcheck.Register(t)
	nodes := testnode.Cluster(t, 1, testnode.Options{})
	for _, target := range []string{"herd://somehost/", "herd:///?a=%zz"} {
		conn, err := grpc.NewClient(target, grpc.WithResolvers(grpcresolver.New(nodes[0].Manager)),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		conn.Close()
		if err == nil || !strings.Contains(err.Error(), "grpcresolver") {
			t.Errorf("%s: err = %v, want the resolver's error", target, err)
		}
	}
}

// A process that is not a member resolves herd:/// from a coordinator's
// watch: it registers nothing and has no Manager, and still reaches every
// member, and stops reaching one that leaves.
func TestNonMemberResolvesFromACoordinatorsWatch(t *testing.T) {
	leakcheck.Register(t)
	endpoint := testnode.Etcd(t)
	members := []*testnode.Node{
		testnode.Start(t, endpoint, testnode.Options{Health: true}),
		testnode.Start(t, endpoint, testnode.Options{Health: true}),
	}
	testnode.WaitViews(t, members, 2)
	cfg := etcd.DefaultConfig()
	cfg.Endpoints = endpoint
	gateway, err := etcd.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer gateway.Close()
	conn, err := grpc.NewClient("herd:///",
		grpc.WithResolvers(grpcresolver.NewFromWatcher(gateway)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	clusterwait.WaitUntil(t, 10*time.Second, "calls to reach both members", func() bool { return len(reached(t, conn, 6)) == 2 })
	if nodes, _ := gateway.QueryRemoteNodes(context.Background()); len(nodes) != 2 {
		t.Fatalf("the gateway is listed: %v", clusterwait.IDs(nodes))
	}
	if err := members[1].Coord.Close(); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitUntil(t, 5*time.Second, "calls to stop reaching the member that left", func() bool {
		return reached(t, conn, 4)[members[1].Self.Address.String()] == 0
	})
}
