// Package archtest checks the import rules in ARCHITECTURE.md ("Import
// rules") with go list, so the folder layout keeps showing the architecture.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

const module = "github.com/herd-go/herd"

var backendSDKs = []string{"go.etcd.io/", "github.com/hashicorp/consul", "github.com/go-zookeeper/", "github.com/nacos-group/", "k8s.io/"}

func TestImportRules(t *testing.T) {
	for _, d := range deps(t, module+"/selector") {
		if strings.HasPrefix(d, module) && d != module+"/selector" {
			t.Errorf("selector imports %s; it must import nothing of herd", d)
		}
	}
	for _, d := range deps(t, module+"/cluster") {
		for _, sdk := range backendSDKs {
			if strings.HasPrefix(d, sdk) {
				t.Errorf("cluster depends on backend SDK %s", d)
			}
		}
		if strings.HasPrefix(d, module+"/remote") {
			t.Errorf("cluster imports %s", d)
		}
	}
	for _, d := range deps(t, module+"/remote") {
		if strings.HasPrefix(d, module+"/cluster/") && !strings.HasPrefix(d, module+"/cluster/internal/") {
			t.Errorf("remote imports backend %s", d)
		}
		for _, sdk := range backendSDKs {
			if strings.HasPrefix(d, sdk) {
				t.Errorf("remote depends on backend SDK %s", d)
			}
		}
	}
	// The SPI imports cluster and nothing above it or beside it: a backend
	// written outside herd gets it without any other backend's SDK.
	for _, d := range deps(t, module+"/cluster/backend/...") {
		for _, sdk := range backendSDKs {
			if strings.HasPrefix(d, sdk) {
				t.Errorf("cluster/backend depends on backend SDK %s", d)
			}
		}
		if strings.HasPrefix(d, module+"/remote") || strings.HasPrefix(d, module+"/shard") ||
			(strings.HasPrefix(d, module+"/cluster/") && !strings.HasPrefix(d, module+"/cluster/backend") && !strings.HasPrefix(d, module+"/cluster/internal/")) {
			t.Errorf("cluster/backend imports %s; it may import cluster (and what cluster lends it in cluster/internal) and herd's internal helpers only", d)
		}
	}
	// A program that uses one backend compiles that backend's SDK only (and
	// never the embedded etcd server the tests use).
	own := map[string]string{
		"etcd":       "go.etcd.io/",
		"consul":     "github.com/hashicorp/consul",
		"zookeeper":  "github.com/go-zookeeper/",
		"kubernetes": "k8s.io/",
		"nacos":      "github.com/nacos-group/",
	}
	for backend, sdk := range own {
		for _, d := range deps(t, module+"/cluster/"+backend) {
			if strings.HasPrefix(d, "go.etcd.io/etcd/server") {
				t.Errorf("cluster/%s depends on the etcd server (%s)", backend, d)
			}
			for _, other := range backendSDKs {
				if other != sdk && strings.HasPrefix(d, other) {
					t.Errorf("cluster/%s depends on another backend's SDK: %s", backend, d)
				}
			}
		}
	}
}

// TestOperabilityStaysOutOfTheCore: a program that does not import metrics,
// status or cmd/herd compiles neither Prometheus nor herd's HTTP handlers.
// (nacos-sdk-go brings Prometheus by itself, so cluster/nacos is checked
// for herd's packages only.)
func TestOperabilityStaysOutOfTheCore(t *testing.T) {
	for _, pkg := range []string{"cluster", "remote", "selector", "shard", "inspect", "grpcresolver",
		"cluster/etcd", "cluster/consul", "cluster/zookeeper", "cluster/kubernetes", "cluster/nacos"} {
		for _, d := range deps(t, module+"/"+pkg) {
			if d == module+"/metrics" || d == module+"/status" {
				t.Errorf("%s imports %s", pkg, d)
			}
			if pkg != "cluster/nacos" && strings.HasPrefix(d, "github.com/prometheus/") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}
