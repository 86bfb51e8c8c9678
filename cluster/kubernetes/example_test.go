package kubernetes_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/kubernetes"
)

// New reaches the API server (in-cluster config unless Kubeconfig is set)
// and starts a reflector on the pods LabelSelector matches. The platform
// registers: RegisterRemote only checks that this pod is visible and named
// by the node ID, so set SW_CLUSTER_NODE_ID from metadata.name.
// It needs a running Kubernetes API server and a pod to run in, so go test compiles this example without
// running it; the package's conformance tests make the same calls against a
// real server.
func ExampleNew() {
	ctx := context.Background()
	cfg := kubernetes.DefaultConfig()
	cfg.Namespace = "orders"
	cfg.LabelSelector = "app=orders"
	cfg.PortName = "grpc" // the container port peers dial
	coord, err := kubernetes.New(ctx, cfg, cluster.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err) // names the setting to fix: an unreachable server fails within its timeout
	}
	defer coord.Close() // stops the reflector; the pod leaves views when it stops being Ready

	self := cluster.Node{ID: "orders-7d9c5-x2k4p", Address: cluster.Address{Host: "10.0.0.5", Port: 11800}}
	if err := coord.RegisterRemote(ctx, self); err != nil {
		log.Fatal(err) // cluster.ErrDuplicateID if a live process at another address holds the ID
	}
	for nodes := range coord.Watch(ctx) { // every change, pushed by the server
		fmt.Println(len(nodes), "nodes")
	}
}
