package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/herd-go/herd/cluster"
)

// Placeholders take the environment variable when it is set, else the
// default after the first colon.
func ExampleLoadConfig() {
	yml := []byte(`
cluster:
  selector: ${SW_CLUSTER:standalone}
  nodeId: ${SW_CLUSTER_NODE_ID:""}
  etcd:
    endpoints: ${SW_CLUSTER_ETCD_ENDPOINTS:localhost:2379}
`)
	environment := map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_NODE_ID": "node-a"}
	lookup := func(name string) (string, bool) { v, ok := environment[name]; return v, ok }

	cfg, err := cluster.LoadConfig(yml, cluster.WithLookupEnv(lookup))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Backend, cfg.NodeID)
	// Output: etcd node-a
}

// A misspelt key anywhere under cluster is an error that points at it.
func ExampleLoadConfig_misspelt() {
	_, err := cluster.LoadConfig([]byte("cluster:\n  selector: standalone\n  standalone:\n    internalComHots: 10.0.0.1\n"))
	var ce *cluster.ConfigError
	fmt.Println(errors.As(err, &ce), ce.Line)
	fmt.Println(err)
	// Output:
	// true 4
	// config: config:4: unknown key cluster.standalone.internalComHots: did you mean cluster.standalone.internalComHost? (cluster.standalone has internalComHost, internalComPort)
}

// A file's errors name the file and the line.
func ExampleLoadConfigFile() {
	dir, err := os.MkdirTemp("", "herd-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "application.yml")
	yml := "core:\n  default: {}\ncluster:\n  selector: ${SW_CLUSTER:etcd}\n  etcd:\n    ttl: 10\n"
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		panic(err)
	}

	cfg, err := cluster.LoadConfigFile(path) // a SkyWalking application.yml; other top-level keys are ignored
	if err != nil {
		panic(err)
	}
	var etcd struct {
		TTL time.Duration `yaml:"ttl"`
	}
	err = cfg.Section("etcd").Decode(&etcd) // as cluster.New does for the selected backend
	var ce *cluster.ConfigError
	if errors.As(err, &ce) {
		fmt.Println(filepath.Base(ce.File), ce.Line, ce.Key, ce.Value)
		fmt.Println("want", ce.Accepted)
	}
	// Output:
	// application.yml 6 cluster.etcd.ttl 10
	// want a duration with a unit, such as 500ms, 10s or 1m30s
}

// New builds the backend that cluster.selector (SW_CLUSTER) names; here the
// built-in default, standalone.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := cluster.DefaultConfig(cluster.WithLookupEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		panic(err)
	}
	coord, err := cluster.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer coord.Close()

	self := cluster.Node{ID: "node-a", Address: cluster.Address{Host: "127.0.0.1", Port: 11800}}
	if err := coord.RegisterRemote(ctx, self); err != nil {
		panic(err)
	}
	nodes, err := coord.QueryRemoteNodes(ctx)
	if err != nil {
		panic(err)
	}
	for _, n := range nodes {
		fmt.Println(n.ID, n.Address, n.Self)
	}
	// Output: node-a 127.0.0.1:11800 true
}

// SelfNode names the setting to fix when the address cannot be dialled.
func ExampleConfig_SelfNode() {
	cfg, _ := cluster.DefaultConfig(cluster.WithLookupEnv(func(name string) (string, bool) {
		if name == "SW_CLUSTER_INTERNAL_COM_HOST" {
			return "0.0.0.0", true
		}
		return "", false
	}))
	_, err := cfg.SelfNode("10.1.2.3:11800")
	fmt.Println(err)
	// Output: config: cluster.standalone.internalComHost = "0.0.0.0" (from SW_CLUSTER_INTERNAL_COM_HOST) is not accepted: want an IP or DNS name that peers can reach (SW_CLUSTER_INTERNAL_COM_HOST): advertised host is empty or a wildcard address that peers cannot dial (0.0.0.0)
}

// Leader election: campaign, and work while leading. The standalone
// backend leads at once.
func ExampleElector() {
	ctx := context.Background()
	var coord cluster.Coordinator = cluster.NewStandalone() // or cluster.New(ctx, cfg)
	defer coord.Close()
	self := cluster.Node{ID: "node-1", Address: cluster.Address{Host: "127.0.0.1", Port: 11800}}
	if err := coord.RegisterRemote(ctx, self); err != nil {
		fmt.Println(err)
		return
	}
	leaders := coord.Observe(ctx, "compactor")    // any node may observe
	lead, err := coord.Campaign(ctx, "compactor") // blocks until this node leads
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lead.Resign(context.Background())
	work := lead.Context() // ends with the leadership: stop leader-only work then
	fmt.Println("leading, term", lead.Term(), work.Err())
	for l := range leaders {
		if l.ID != "" {
			fmt.Println("observed", l.ID, "term", l.Term)
			break
		}
	}
	if err := lead.Resign(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println(lead.Err())
	// Output:
	// leading, term 1 <nil>
	// observed node-1 term 1
	// cluster: leadership resigned
}

// NewStandalone is the default backend (SW_CLUSTER unset or standalone) as a
// value: one node whose view is itself, which leads every election at once.
// Tests and single-process programs use it directly.
func ExampleNewStandalone() {
	ctx := context.Background()
	coord := cluster.NewStandalone()
	defer coord.Close()
	if err := coord.RegisterRemote(ctx, cluster.Node{ID: "solo", Address: cluster.Address{Host: "127.0.0.1", Port: 11800}}); err != nil {
		panic(err)
	}
	nodes, _ := coord.QueryRemoteNodes(ctx)
	lead, err := coord.Campaign(ctx, "compactor")
	if err != nil {
		panic(err)
	}
	defer lead.Resign(ctx)
	fmt.Println(len(nodes), nodes[0].ID, "leads, term", lead.Term())
	// Output: 1 solo leads, term 1
}

// Several nodes in one process: each configuration reads its own variables
// through WithLookupEnv instead of the process environment, and cluster.New
// passes that lookup on to the backend.
func ExampleWithLookupEnv() {
	ctx := context.Background()
	nodeConfig := func(id string) (*cluster.Config, error) {
		vars := map[string]string{"SW_CLUSTER": "standalone", "SW_CLUSTER_NODE_ID": id}
		return cluster.DefaultConfig(cluster.WithLookupEnv(func(name string) (string, bool) {
			v, ok := vars[name]
			return v, ok
		}))
	}
	for i, id := range []string{"node-a", "node-b"} {
		cfg, err := nodeConfig(id)
		if err != nil {
			panic(err)
		}
		coord, err := cluster.New(ctx, cfg)
		if err != nil {
			panic(err)
		}
		defer coord.Close()
		self, err := cfg.SelfNode(fmt.Sprintf("127.0.0.1:%d", 11800+i))
		if err != nil {
			panic(err)
		}
		fmt.Println(self.ID, self.Address)
	}
	// Output:
	// node-a 127.0.0.1:11800
	// node-b 127.0.0.1:11801
}
