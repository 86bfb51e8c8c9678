package remote_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/remote"
)

// TestHealthFollowsRegistration checks the grpc.health.v1 status over a real
// connection: NOT_SERVING until the backend lists self, SERVING while it
// does, NOT_SERVING when the backend loses self and for good after Close.
func TestHealthFollowsRegistration(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := remote.NewServer()
	g := grpc.NewServer()
	srv.Register(g)
	srv.RegisterHealth(g)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	status := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("health check %q: %v", service, err)
		}
		return r.Status
	}
	want := func(st healthpb.HealthCheckResponse_ServingStatus, when string) {
		t.Helper()
		for _, service := range []string{"", remote.HealthService} {
			if got := status(service); got != st {
				t.Fatalf("%s: service %q is %v, want %v", when, service, got, st)
			}
		}
	}
	want(healthpb.HealthCheckResponse_NOT_SERVING, "before any Manager")

	peer := node("peer", "10.0.0.9", 11800)
	src := newFake(peer) // the backend does not list self yet
	m, err := remote.NewManager(src, self, srv, remote.WithDialer((&dialLog{}).dial), remote.WithRefreshInterval(time.Hour), remote.WithErrorHandler(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	want(healthpb.HealthCheckResponse_NOT_SERVING, "self not listed yet")
	if m.Stats().Registered {
		t.Fatal("Stats().Registered before the backend listed self")
	}
	src.set([]cluster.Node{self, peer}, nil)
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	want(healthpb.HealthCheckResponse_SERVING, "self listed")
	src.watch <- []cluster.Node{peer} // the backend lost self's registration
	clusterwait.WaitUntil(t, 5*time.Second, "NOT_SERVING after the backend lost self", func() bool {
		return status("") == healthpb.HealthCheckResponse_NOT_SERVING
	})
	src.watch <- []cluster.Node{self, peer}
	clusterwait.WaitUntil(t, 5*time.Second, "SERVING after self is back", func() bool {
		return status("") == healthpb.HealthCheckResponse_SERVING
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	want(healthpb.HealthCheckResponse_NOT_SERVING, "after Close")
}

// TestManagerStatsCount checks the counters metrics and status pages read.
func TestManagerStatsCount(t *testing.T) {
	a, b := node("a", "10.0.0.1", 11800), node("b", "10.0.0.2", 11800)
	src := newFake(self, a, b)
	before := time.Now()
	m, _ := newManager(t, src)
	s := m.Stats()
	if s.Joined != 2 || s.Left != 0 || !s.Registered || s.LastAnswer.Before(before) {
		t.Fatalf("after the first query: %+v, want 2 joined, registered, an answer time", s)
	}
	src.set([]cluster.Node{self, a}, nil)
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.set(nil, errors.New("backend down"))
	if err := m.Refresh(context.Background()); err == nil {
		t.Fatal("a failed query returned no error")
	}
	last := m.Stats().LastAnswer
	if err := m.Refresh(context.Background()); err == nil {
		t.Fatal("a failed query returned no error")
	}
	s = m.Stats()
	if s.Joined != 2 || s.Left != 1 || s.QueryFailures != 2 || !s.LastAnswer.Equal(last) {
		t.Fatalf("after a leave and two failed queries: %+v", s)
	}
}
