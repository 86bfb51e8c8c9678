// Package kvbackend is a herd backend written outside herd's module, with herd's
// public packages only: proof that package cluster/backend is enough to
// write one, and an example for backend authors. It is not one of herd's
// supported backends (use cluster/etcd for etcd).
//
// It keeps each node under <prefix>/nodes/<id> on an etcd lease, follows
// the others with a watch, elects with the lease-record protocol
// (cluster/backend/leaserecord) over a key written by compare-and-swap, and
// keeps records under <prefix>/records/. What every backend shares (the
// order of RegisterRemote and Close, the view, the election book) comes
// from backend.Lifecycle.
package kvbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/herd-go/herd/backoff"
	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/cluster/backend/leaserecord"
)

// Config says where the backend keeps its keys.
type Config struct {
	Endpoints []string      // etcd's client URLs
	Prefix    string        // every key lives under it, e.g. "/myapp"
	TTL       time.Duration // a node's lease, whole seconds; default 5s
	// ElectionTTL and RenewPeriod are the lease-record protocol's clock;
	// default 3s and 500ms.
	ElectionTTL time.Duration
	RenewPeriod time.Duration
}

// Coordinator is one node's view of the cluster.
type Coordinator struct {
	cfg    Config
	client *clientv3.Client
	life   backend.Lifecycle
	lease  clientv3.LeaseID // under life's registration; read by Deregister
}

var (
	_ cluster.Coordinator = (*Coordinator)(nil)
	_ cluster.Elector     = (*Coordinator)(nil)
	_ cluster.Records     = (*Coordinator)(nil)
)

// New connects, checks that etcd answers, and starts following the nodes.
func New(ctx context.Context, cfg Config) (*Coordinator, error) {
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.ElectionTTL == 0 {
		cfg.ElectionTTL, cfg.RenewPeriod = 3*time.Second, 500*time.Millisecond
	}
	if cfg.Prefix == "" || len(cfg.Endpoints) == 0 {
		return nil, errors.New("kv: Config needs Endpoints and a Prefix")
	}
	client, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("kv: connecting to %v: %w", cfg.Endpoints, err)
	}
	probe, cancel := context.WithTimeout(ctx, 5*time.Second)
	first, err := client.Get(probe, cfg.nodes(), clientv3.WithPrefix())
	cancel()
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("kv: %v did not answer: %w", cfg.Endpoints, err)
	}
	c := &Coordinator{cfg: cfg, client: client}
	c.life.Init("kv", registrar{c}, 5*time.Second)
	c.life.Go(func() { c.follow(first) })
	return c, nil
}

func (cfg Config) nodes() string               { return cfg.Prefix + "/nodes/" }
func (cfg Config) election(name string) string { return cfg.Prefix + "/elections/" + name }
func (cfg Config) record(name string) string   { return cfg.Prefix + "/records/" + name }

// follow publishes the nodes after the first listing and after every change,
// listing again whenever the watch fails.
func (c *Coordinator) follow(resp *clientv3.GetResponse) {
	ctx := c.life.Context()
	bo := backoff.New(100*time.Millisecond, time.Second)
	for ctx.Err() == nil {
		if resp == nil {
			var err error
			if resp, err = c.client.Get(ctx, c.cfg.nodes(), clientv3.WithPrefix()); err != nil {
				bo.Wait(ctx)
				continue
			}
		}
		current := map[string]cluster.Node{}
		for _, kv := range resp.Kvs {
			if n, err := backend.DecodeNode(kv.Value); err == nil {
				current[string(kv.Key)] = n
			}
		}
		c.publish(current)
		wctx, stop := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range c.client.Watch(wctx, c.cfg.nodes(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				delete(current, string(ev.Kv.Key))
				if n, err := backend.DecodeNode(ev.Kv.Value); ev.Type == clientv3.EventTypePut && err == nil {
					current[string(ev.Kv.Key)] = n
				}
			}
			c.publish(current)
		}
		stop()
		resp = nil
		bo.Wait(ctx)
	}
}

func (c *Coordinator) publish(current map[string]cluster.Node) {
	nodes := make([]cluster.Node, 0, len(current))
	for _, n := range current {
		nodes = append(nodes, n)
	}
	c.life.View.Publish(nodes, c.life.RegisteredID())
}

// RegisterRemote makes self a member until Close.
func (c *Coordinator) RegisterRemote(ctx context.Context, self cluster.Node) error {
	return c.life.RegisterRemote(ctx, self)
}

// QueryRemoteNodes lists the nodes from etcd now.
func (c *Coordinator) QueryRemoteNodes(ctx context.Context) ([]cluster.Node, error) {
	if c.life.Closed() {
		return nil, cluster.ErrClosed
	}
	resp, err := c.client.Get(ctx, c.cfg.nodes(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("kv: listing %s: %w", c.cfg.nodes(), err)
	}
	var nodes []cluster.Node
	for _, kv := range resp.Kvs {
		if n, err := backend.DecodeNode(kv.Value); err == nil {
			nodes = append(nodes, n)
		}
	}
	return backend.Sorted(nodes, c.life.RegisteredID()), nil
}

// Watch streams the nodes after every change.
func (c *Coordinator) Watch(ctx context.Context) <-chan []cluster.Node {
	return c.life.View.Subscribe(ctx)
}

// Stats returns the coordinator's counters; this example keeps none.
func (c *Coordinator) Stats() cluster.Stats { return cluster.Stats{} }

// Close resigns, deregisters (peers drop the node at once) and stops.
func (c *Coordinator) Close() error {
	return c.life.Close(func() error {
		c.life.Wait()
		return c.client.Close()
	})
}

// RegisteredID, Leading and Campaigning are what reports and package shard
// ask of a coordinator.
func (c *Coordinator) RegisteredID() string { return c.life.RegisteredID() }
func (c *Coordinator) Leading(election string) (term uint64, ok bool) {
	return c.life.Leading(election)
}
func (c *Coordinator) Campaigning(election string) bool { return c.life.Campaigning(election) }

// registrar is this backend's part of the lifecycle.
type registrar struct{ c *Coordinator }

// Register puts self on a new lease unless a live node at another address
// holds the ID; the put is a transaction on what was checked.
func (r registrar) Register(ctx context.Context, self cluster.Node) error {
	lease, err := r.c.claim(ctx, self)
	if err != nil {
		return fmt.Errorf("kv: registering %s: %w", self.ID, err)
	}
	r.c.lease = lease
	return nil
}

func (c *Coordinator) claim(ctx context.Context, self cluster.Node) (clientv3.LeaseID, error) {
	value, err := backend.EncodeNode(self)
	if err != nil {
		return 0, err
	}
	g, err := c.client.Grant(ctx, int64(c.cfg.TTL/time.Second))
	if err != nil {
		return 0, err
	}
	key := c.cfg.nodes() + self.ID
	cond := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	for range 5 {
		resp, err := c.client.Txn(ctx).If(cond).Then(clientv3.OpPut(key, string(value), clientv3.WithLease(g.ID))).Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			return 0, err
		}
		if resp.Succeeded {
			return g.ID, nil
		}
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			continue
		}
		if holder, err := backend.DecodeNode(kvs[0].Value); err == nil && kvs[0].Lease != int64(g.ID) {
			if err := backend.CheckTakeover(self, holder); err != nil {
				_, _ = c.client.Revoke(context.Background(), g.ID)
				return 0, err
			}
		}
		cond = clientv3.Compare(clientv3.ModRevision(key), "=", kvs[0].ModRevision)
	}
	return 0, fmt.Errorf("%s kept changing", key)
}

// Supervise keeps the lease alive and registers again when it is lost.
func (r registrar) Supervise(ctx context.Context, self cluster.Node) {
	c := r.c
	bo := backoff.New(100*time.Millisecond, time.Second)
	lease := c.lease
	for ctx.Err() == nil {
		if alive, err := c.client.KeepAlive(ctx, lease); err == nil {
			for range alive {
			}
		}
		for ctx.Err() == nil {
			if l, err := c.claim(ctx, self); err == nil {
				lease = l
				c.lease = l // Deregister runs after Supervise returns
				break
			}
			bo.Wait(ctx)
		}
	}
}

// Update rewrites the node's key on its lease: Close marks the node leaving
// before it deregisters, so that peers let it go at once.
func (r registrar) Update(ctx context.Context, self cluster.Node) error {
	value, err := backend.EncodeNode(self)
	if err != nil {
		return err
	}
	_, err = r.c.client.Put(ctx, r.c.cfg.nodes()+self.ID, string(value), clientv3.WithLease(r.c.lease))
	return err
}

// Deregister revokes the lease, which deletes the node's key.
func (r registrar) Deregister(ctx context.Context, _ cluster.Node) error {
	_, err := r.c.client.Revoke(ctx, r.c.lease)
	return err
}

// Campaign elects over a lease record kept in one key.
func (c *Coordinator) Campaign(ctx context.Context, name string) (*cluster.Leadership, error) {
	id := c.life.RegisteredID()
	entry, cctx, err := c.life.Elections.Begin(ctx, name, id)
	if err != nil {
		return nil, err
	}
	return leaserecord.Elect(cctx, entry, fmt.Sprintf("kv: campaign for %q", name), c.store(c.cfg.election(name)), id, c.timing(), c.life.Go)
}

// Observe reads the election's record every renew period.
func (c *Coordinator) Observe(ctx context.Context, name string) <-chan cluster.Leader {
	store := c.store(c.cfg.election(name))
	return backend.Observe(ctx, c.life.Context(), name, c.life.Go, func(ctx context.Context, publish func(cluster.Leader)) {
		leaserecord.Observe(ctx, store, c.timing(), publish)
	})
}

func (c *Coordinator) timing() leaserecord.Timing {
	return leaserecord.Timing{TTL: c.cfg.ElectionTTL, RenewDeadline: leaserecord.DefaultRenewDeadline(c.cfg.ElectionTTL), RetryPeriod: c.cfg.RenewPeriod}
}

// store is a leaserecord.Store over one key; the version is the key's
// mod revision. Each call is bounded by the renew period: etcd's client
// waits for ever for a connection that is gone, and a candidate cut off
// from the server must find out (the protocol gives up after RenewDeadline
// of failed calls, with cluster.ErrSessionLost).
type store struct {
	c   *Coordinator
	key string
}

func (c *Coordinator) store(key string) store { return store{c, key} }

func (s store) Get(ctx context.Context) (leaserecord.Record, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.c.cfg.RenewPeriod)
	defer cancel()
	data, version, err := s.c.get(ctx, s.key)
	if err != nil || version == "" {
		return leaserecord.Record{}, version, err
	}
	var r leaserecord.Record
	if err := json.Unmarshal(data, &r); err != nil {
		return leaserecord.Record{}, "", fmt.Errorf("kv: %s does not hold a lease record: %w", s.key, err)
	}
	return r, version, nil
}

func (s store) Put(ctx context.Context, r leaserecord.Record, version string) (string, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, s.c.cfg.RenewPeriod)
	defer cancel()
	v, err := s.c.put(ctx, s.key, data, version)
	if errors.Is(err, cluster.ErrVersionConflict) {
		return "", leaserecord.ErrConflict
	}
	return v, err
}

func (c *Coordinator) get(ctx context.Context, key string) ([]byte, string, error) {
	resp, err := c.client.Get(ctx, key)
	if err != nil {
		return nil, "", err
	}
	if len(resp.Kvs) == 0 {
		return nil, "", nil
	}
	return resp.Kvs[0].Value, strconv.FormatInt(resp.Kvs[0].ModRevision, 10), nil
}

// put writes key if it is still at version ("" = absent).
func (c *Coordinator) put(ctx context.Context, key string, data []byte, version string) (string, error) {
	cond := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	if version != "" {
		rev, err := strconv.ParseInt(version, 10, 64)
		if err != nil {
			return "", fmt.Errorf("kv: version %q is not one of this backend's: %w", version, cluster.ErrVersionConflict)
		}
		cond = clientv3.Compare(clientv3.ModRevision(key), "=", rev)
	}
	resp, err := c.client.Txn(ctx).If(cond).Then(clientv3.OpPut(key, string(data))).Commit()
	if err != nil {
		return "", err
	}
	if !resp.Succeeded {
		return "", fmt.Errorf("kv: %s: %w", key, cluster.ErrVersionConflict)
	}
	return strconv.FormatInt(resp.Header.Revision, 10), nil
}

// GetRecord reads a record.
func (c *Coordinator) GetRecord(ctx context.Context, name string) ([]byte, string, error) {
	if err := backend.CheckRecord(c.life.Context(), name); err != nil {
		return nil, "", err
	}
	return c.get(ctx, c.cfg.record(name))
}

// PutRecord writes a record by compare-and-swap.
func (c *Coordinator) PutRecord(ctx context.Context, name string, data []byte, version string) (string, error) {
	if err := backend.CheckRecord(c.life.Context(), name); err != nil {
		return "", err
	}
	return c.put(ctx, c.cfg.record(name), data, version)
}

// WatchRecord streams a record's version from an etcd watch.
func (c *Coordinator) WatchRecord(ctx context.Context, name string) <-chan string {
	key := c.cfg.record(name)
	return backend.WatchRecord(ctx, c.life.Context(), name, c.life.Go, func(ctx context.Context, publish func(string)) {
		bo := backoff.New(100*time.Millisecond, time.Second)
		for ctx.Err() == nil {
			resp, err := c.client.Get(ctx, key)
			if err != nil {
				bo.Wait(ctx)
				continue
			}
			version := ""
			if len(resp.Kvs) > 0 {
				version = strconv.FormatInt(resp.Kvs[0].ModRevision, 10)
			}
			publish(version)
			for wr := range c.client.Watch(clientv3.WithRequireLeader(ctx), key, clientv3.WithRev(resp.Header.Revision+1)) {
				if wr.Err() != nil {
					break
				}
				for _, ev := range wr.Events {
					if ev.Type == clientv3.EventTypeDelete {
						publish("")
					} else {
						publish(strconv.FormatInt(ev.Kv.ModRevision, 10))
					}
				}
			}
			bo.Wait(ctx)
		}
	})
}

// String names the backend in logs.
func (c *Coordinator) String() string { return "kv at " + strings.Join(c.cfg.Endpoints, ",") }
