package all_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/herd-go/herd/cluster"
	_ "github.com/herd-go/herd/remote/peertls" // declares cluster.tls
)

// Every section herd ships is declared by its own package and, once that
// package is imported, is in the built-in configuration with its
// environment variables, each section's under one prefix of its own (the
// loader passes over that prefix in a program that does not import it).
func TestEverySectionIsDeclaredWhereItIsRead(t *testing.T) {
	var doc struct {
		Cluster map[string]yaml.Node `yaml:"cluster"`
	}
	if err := yaml.Unmarshal(cluster.DefaultYAML(), &doc); err != nil {
		t.Fatal(err)
	}
	prefixes := map[string]string{
		"consul": "SW_CLUSTER_CONSUL_", "etcd": "SW_CLUSTER_ETCD_", "gossip": "SW_CLUSTER_GOSSIP_",
		"kubernetes": "SW_CLUSTER_K8S_", "nacos": "SW_CLUSTER_NACOS_", "zookeeper": "SW_CLUSTER_ZK_",
		"tls": "SW_CLUSTER_TLS_",
	}
	variable := regexp.MustCompile(`\$\{(SW_CLUSTER_[A-Z0-9_]+)`)
	for name, prefix := range prefixes {
		sec, ok := doc.Cluster[name]
		if !ok {
			t.Errorf("the built-in configuration has no cluster.%s", name)
			continue
		}
		out, err := yaml.Marshal(&sec)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range variable.FindAllStringSubmatch(string(out), -1) {
			if v := m[1]; !strings.HasPrefix(v, prefix) && !strings.HasPrefix(v, "SW_CLUSTER_INTERNAL_COM_") {
				t.Errorf("cluster.%s reads %s, outside its prefix %s", name, v, prefix)
			}
		}
		if name != "tls" && !strings.Contains(string(out), "internalComHost") {
			t.Errorf("cluster.%s lacks the advertised address's keys", name)
		}
	}
}

// Once a backend is imported, a misspelt variable of its section is
// refused with the one meant.
func TestMisspeltBackendVariableIsRefused(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"SW_CLUSTER_GOSSIP_SEED", "SW_CLUSTER_GOSSIP_SEEDS"},
		{"SW_CLUSTER_ETCD_ENDPOINT", "SW_CLUSTER_ETCD_ENDPOINTS"},
		{"SW_CLUSTER_TLS_CAFILE", "SW_CLUSTER_TLS_CA_FILE"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			t.Setenv(tc.set, "x")
			_, err := cluster.DefaultConfig()
			if !errors.Is(err, cluster.ErrUnknownEnv) || !strings.Contains(err.Error(), "did you mean "+tc.want+"?") {
				t.Fatalf("DefaultConfig with %s set: %v, want an error suggesting %s", tc.set, err, tc.want)
			}
		})
	}
}
