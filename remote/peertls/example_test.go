package peertls_test

import (
	"fmt"
	"log"

	"google.golang.org/grpc"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/remote/peertls"
)

// One value secures both sides of peer traffic: the grpc.Server that
// mounts remote.Server, and the clients the Manager dials. With
// SW_CLUSTER_TLS_CA_FILE, SW_CLUSTER_TLS_CERT_FILE and SW_CLUSTER_TLS_KEY_FILE
// set it is mutual TLS 1.3; without them, plaintext.
func ExampleLoad() {
	cfg, err := cluster.DefaultConfig(cluster.WithLookupEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		log.Fatal(err)
	}
	creds, err := peertls.Load(cfg)
	if err != nil {
		log.Fatal(err) // names the setting to fix, e.g. cluster.tls.keyFile (SW_CLUSTER_TLS_KEY_FILE)
	}
	g := grpc.NewServer(creds.ServerOption())
	defer g.Stop()
	remote.NewServer().Register(g)
	clientOpts := remote.WithDialOptions(creds.DialOption())
	_ = remote.WithClientOptions(clientOpts) // pass to remote.NewManager
	fmt.Println("TLS:", creds.Enabled())
	// Output: TLS: false
}

// New takes the files from code instead of the cluster.tls section. With
// any file set all three are needed, and the error names the one missing.
func ExampleNew() {
	c := peertls.DefaultConfig()
	c.CAFile, c.CertFile = "/etc/herd/ca.pem", "/etc/herd/node.pem" // and c.KeyFile
	_, err := peertls.New(c)
	fmt.Println(err)
	// Output: config: cluster.tls.keyFile = "" is not accepted: want a PEM file path (SW_CLUSTER_TLS_KEY_FILE): mutual TLS needs cluster.tls.caFile, cluster.tls.certFile and cluster.tls.keyFile together
}
