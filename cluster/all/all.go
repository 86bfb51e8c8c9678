// Package all registers every herd backend, so that cluster.selector
// (SW_CLUSTER) may name any of them:
//
//	import _ "github.com/herd-go/herd/cluster/all"
//
// A program that selects one backend only can import that backend's package
// instead (for example _ "github.com/herd-go/herd/cluster/etcd") and skip
// compiling the others' SDKs. standalone is built into package cluster and
// needs no import.
package all

import (
	_ "github.com/herd-go/herd/cluster/consul"     // selector: consul
	_ "github.com/herd-go/herd/cluster/etcd"       // selector: etcd
	_ "github.com/herd-go/herd/cluster/gossip"     // selector: gossip
	_ "github.com/herd-go/herd/cluster/kubernetes" // selector: kubernetes
	_ "github.com/herd-go/herd/cluster/nacos"      // selector: nacos
	_ "github.com/herd-go/herd/cluster/zookeeper"  // selector: zookeeper
)
