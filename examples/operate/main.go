// Command operate shows everything an operator gets from a herd node: the
// standard gRPC health service, Prometheus metrics on a registry of your
// own, the status endpoints and page, and ordinary gRPC clients that reach
// the members through the herd:/// resolver. It runs one node on the
// backend the environment selects (standalone by default).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/herd-go/herd/cluster"
	_ "github.com/herd-go/herd/cluster/all" // every backend selectable by SW_CLUSTER
	"github.com/herd-go/herd/grpcresolver"
	"github.com/herd-go/herd/inspect"
	"github.com/herd-go/herd/metrics"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/status"
)

func main() {
	serve := flag.Bool("serve", false, "keep the node, its status page and metrics up until interrupted")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := cluster.DefaultConfig()
	if err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	self, err := cfg.SelfNode(lis.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	srv := remote.NewServer()
	g := grpc.NewServer()
	srv.Register(g)
	srv.RegisterHealth(g) // grpc.health.v1: SERVING while the backend lists this node
	go g.Serve(lis)
	defer g.Stop()

	coord, err := cluster.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer coord.Close()
	if err := coord.RegisterRemote(ctx, self); err != nil {
		log.Fatal(err)
	}
	peers, err := remote.NewManager(coord, self, srv)
	if err != nil {
		log.Fatal(err)
	}
	defer peers.Close()

	// One Inspector feeds both the metrics and the status endpoints.
	in, err := inspect.New(inspect.Sources{Manager: peers, Coordinator: coord, Server: srv, Backend: cfg.Backend})
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	reg := prometheus.NewRegistry() // yours; herd never uses the global one
	if _, err := metrics.Register(reg, in); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/status/", status.Handler(in)) // /status/, /status/herd, /status/cluster/nodes
	ops, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ops, mux)
	defer ops.Close()

	// An ordinary gRPC client over the membership: grpc-go's round_robin
	// spreads calls over the live members and follows every change.
	conn, err := grpc.NewClient("herd:///",
		grpc.WithResolvers(grpcresolver.New(peers)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	health, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("herd:/// health:", health.Status)

	for _, path := range []string{"/status", "/status/cluster/nodes", "/metrics"} {
		resp, err := http.Get("http://" + ops.Addr().String() + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("GET %s: %s, %d bytes\n", path, resp.Status, len(body))
	}
	if !*serve {
		fmt.Println("status page: run with -serve to keep the node up and open the page in a browser")
		return
	}
	fmt.Printf("status page: http://%s/status/ (serving until interrupted)\n", ops.Addr())
	<-ctx.Done()
}
