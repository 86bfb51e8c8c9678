// Package cluster is herd's core: the Node type, the coordinator roles
// borrowed from Apache SkyWalking's cluster module, the provider registry
// that picks a backend by name, configuration loading, and the built-in
// standalone backend (the default, which needs no import).
//
// Every other backend lives in its own package (cluster/etcd, cluster/consul,
// …) and registers itself from an init function, the way database/sql
// drivers do. Import the ones a program may select, for their side effect:
//
//	import _ "github.com/herd-go/herd/cluster/etcd"
//
// or all of them at once (the binary then holds every backend's SDK):
//
//	import _ "github.com/herd-go/herd/cluster/all"
//
// Roles: a coordinator does more than membership. Elector (leader election
// with fencing terms) and Records (small records written by
// compare-and-swap, where package shard keeps its slot table) are part of
// Coordinator, so what a program needs is checked when it compiles.
//
// Logging: herd logs nothing unless given a *slog.Logger, and it is given
// once: the logger given to New with WithLogger is also the logger of a
// remote.Manager and of shard groups built over the coordinator (LoggerOf),
// unless they are given their own. Everything it would log is also
// returned, passed to an error handler, or counted in a Stats method.
//
// Writing a backend: package cluster/backend holds what a backend is built
// with; RegisterProvider, Factory and Section here are the registry that
// cluster.New selects from, as sql.Register is database/sql's.
//
// This package imports no backend SDK.
package cluster

import (
	"context"
	"errors"
)

// Register is SkyWalking's ClusterRegister: it announces the local node.
type Register interface {
	// RegisterRemote registers self and keeps it registered until Close,
	// re-registering by itself after the backend loses it.
	RegisterRemote(ctx context.Context, self Node) error
}

// NodesQuery is SkyWalking's ClusterNodesQuery.
type NodesQuery interface {
	// QueryRemoteNodes asks the backend for the current members. An error
	// means the answer is unknown, never that the cluster is empty.
	QueryRemoteNodes(ctx context.Context) ([]Node, error)
}

// Watcher pushes membership changes, replacing SkyWalking's polling
// ClusterWatcher.
type Watcher interface {
	// Watch returns a channel that receives the full current member list at
	// once (when known) and after every change. Updates are coalesced: a slow
	// reader skips to the newest list. The channel is closed when ctx ends or
	// the coordinator is closed.
	Watch(ctx context.Context) <-chan []Node
}

// Coordinator is what a backend provides: membership (Register,
// NodesQuery, Watcher), leader election (Elector), compare-and-swap records
// (Records) and its counters. Every role is part of the type, so a program
// calls coord.Campaign or passes coord to shard.Join without asking at run
// time whether it can; a backend whose server has no primitive for a role
// returns an error wrapping errors.ErrUnsupported from it.
type Coordinator interface {
	Register
	NodesQuery
	Watcher
	Elector
	Records
	// Stats returns the coordinator's counters.
	Stats() Stats
	// Close deregisters self (a graceful leave, so peers drop it at once) and
	// stops every goroutine the coordinator started.
	Close() error
}

// ErrClosed is returned by a coordinator's methods after Close.
var ErrClosed = errors.New("cluster: coordinator is closed")
