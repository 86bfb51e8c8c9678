// Package grpcresolver lets ordinary gRPC clients dial the members of a herd
// cluster: a grpc-go resolver.Builder fed by a remote.Manager's view, so
// grpc-go's own balancers (round_robin, pick_first, …) spread RPCs over the
// live nodes and follow every membership change.
//
// Pass the builder to one connection; nothing is registered globally:
//
//	conn, err := grpc.NewClient("herd:///?service=orders",
//		grpc.WithResolvers(grpcresolver.New(manager)),
//		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
//
// The target's query filters members by metadata: herd:///?service=orders
// keeps the nodes whose Meta["service"] is "orders" (several pairs must all
// match; a key given twice matches either value); herd:/// keeps every
// node, self included.
//
// A process that is not a member (a gateway, a batch job) needs no Manager
// and registers nothing: NewFromWatcher resolves from a coordinator's watch.
//
//	coord, err := cluster.New(ctx, cfg) // no RegisterRemote
//	conn, err := grpc.NewClient("herd:///", grpc.WithResolvers(grpcresolver.NewFromWatcher(coord)), …)
package grpcresolver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"

	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/remote"
)

// Scheme is the target scheme the builder resolves: herd:///.
const Scheme = "herd"

// NodeIDKey is the attribute key under which each resolved address carries
// its node's ID (resolver.Address.Attributes).
type NodeIDKey struct{}

// Builder resolves herd:/// targets from one membership source: a
// Manager's view (New) or a coordinator's watch (NewFromWatcher).
type Builder struct {
	// follow calls each with every list of members until ctx ends: the
	// source's own stream, coalesced by the source.
	follow      func(ctx context.Context, each func([]cluster.Node))
	addressMeta string
}

// Option changes what a Builder resolves.
type Option func(*Builder)

// WithAddressFromMeta dials each node at the host:port in Meta[key] instead
// of its herd address, for a gRPC service served on another port than
// herd's transport. Nodes without a valid address under key are left out.
func WithAddressFromMeta(key string) Option { return func(b *Builder) { b.addressMeta = key } }

// New returns a Builder over m's view, the node's own: what it routes herd
// messages over, self included. Use it with grpc.WithResolvers.
func New(m *remote.Manager, opts ...Option) *Builder {
	if m == nil {
		return newBuilder(nil, opts)
	}
	return newBuilder(func(ctx context.Context, each func([]cluster.Node)) {
		for snap := range m.Subscribe(ctx) {
			each(snap.Nodes())
		}
	}, opts)
}

// NewFromWatcher returns a Builder over a coordinator's watch, for a
// process that is not a member (a gateway, a batch job, a command-line
// tool): such a process creates a coordinator, never registers, and
// resolves herd:/// to the members. Nodes that say they are leaving
// (cluster.Node.Leaving) are left out, as a Manager leaves them out.
func NewFromWatcher(w cluster.Watcher, opts ...Option) *Builder {
	if w == nil {
		return newBuilder(nil, opts)
	}
	return newBuilder(func(ctx context.Context, each func([]cluster.Node)) {
		for nodes := range w.Watch(ctx) {
			each(slices.DeleteFunc(slices.Clone(nodes), cluster.Node.Leaving))
		}
	}, opts)
}

func newBuilder(follow func(context.Context, func([]cluster.Node)), opts []Option) *Builder {
	b := &Builder{follow: follow}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Scheme returns "herd".
func (b *Builder) Scheme() string { return Scheme }

// Build starts resolving target for cc: the current view at once, then every
// new one, until the connection closes it or the Manager closes (the last
// addresses then stay).
func (b *Builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	if b.follow == nil {
		return nil, errors.New("grpcresolver: the Builder has no membership source (use grpcresolver.New with a Manager, or NewFromWatcher with a coordinator)")
	}
	if host := target.URL.Host; host != "" {
		return nil, fmt.Errorf("grpcresolver: target %q names host %q; herd targets have none: herd:/// or herd:///?key=value", target.URL.String(), host)
	}
	filter, err := url.ParseQuery(target.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("grpcresolver: target %q: the query must be metadata key=value pairs: %w", target.URL.String(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &herdResolver{cancel: cancel}
	r.wg.Go(func() {
		b.follow(ctx, func(nodes []cluster.Node) { b.update(cc, nodes, filter, target.URL.String()) })
	})
	return r, nil
}

func (b *Builder) update(cc resolver.ClientConn, nodes []cluster.Node, filter url.Values, target string) {
	var state resolver.State
	for _, n := range nodes {
		if !matches(n, filter) {
			continue
		}
		addr := n.Address.String()
		if b.addressMeta != "" {
			a, err := cluster.ParseAddress(n.Meta[b.addressMeta])
			if err != nil {
				continue
			}
			addr = a.String()
		}
		ra := resolver.Address{Addr: addr, Attributes: attributes.New(NodeIDKey{}, n.ID)}
		state.Addresses = append(state.Addresses, ra)
		state.Endpoints = append(state.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{ra}})
	}
	if len(state.Addresses) == 0 {
		cc.ReportError(fmt.Errorf("grpcresolver: no member of the view (%d nodes) matches %s", len(nodes), target))
		return
	}
	_ = cc.UpdateState(state) // an error is the balancer's to report; the next view retries
}

func matches(n cluster.Node, filter url.Values) bool {
	for key, values := range filter {
		v, ok := n.Meta[key]
		if !ok || !slices.Contains(values, v) {
			return false
		}
	}
	return true
}

type herdResolver struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ResolveNow does nothing: the Manager pushes every change.
func (r *herdResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close stops following the view.
func (r *herdResolver) Close() {
	r.cancel()
	r.wg.Wait()
}
