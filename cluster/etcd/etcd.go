// Package etcd is herd's etcd coordinator (go.etcd.io/etcd/client/v3).
//
// Each node is a key <namespace>/<serviceName>/<node id> holding the node's
// JSON, attached to a lease that is kept alive. Registration is supervised:
// when the lease is lost (expired, revoked, or the key deleted) a new lease is
// granted and the key put again, with jittered, capped backoff, until Close.
// Membership is pushed: the prefix is listed once and watched from the listed
// revision; on compaction or cancellation it is listed and watched again.
//
// It registers itself under the name "etcd":
//
//	import _ "github.com/herd-go/herd/cluster/etcd"
package etcd

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/herd-go/herd/backoff"
	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// section is this backend's part of herd's built-in configuration.
//
//go:embed config.yaml
var section []byte

func init() { backend.Register("etcd", section, DefaultConfig, New) }

// reconnectBackoff is bo as grpc-go's reconnect backoff, with grpc-go's own
// growth and jitter.
func reconnectBackoff(bo cluster.Backoff) grpcbackoff.Config {
	return grpcbackoff.Config{BaseDelay: bo.Initial, Multiplier: 1.6, Jitter: 0.2, MaxDelay: bo.Max}
}

// defaultBackoff bounds the delays of re-registration and re-listing.
// The cap is short so that a server that comes back is seen within about a
// second.
var defaultBackoff = cluster.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}

// Coordinator registers self in etcd and watches the other nodes.
type Coordinator struct {
	cfg    Config
	opts   cluster.Options
	client *clientv3.Client
	prefix string

	life backend.Lifecycle
	ctx  context.Context // life's: ends at Close

	mu       sync.Mutex
	lease    clientv3.LeaseID // the registration's, once registered
	putRev   int64            // the revision of the registration's last put
	selfGone chan int64       // nudges the supervisor when our key is deleted, with the deletion's revision

	malformed       backend.Malformed
	reregistrations atomic.Uint64
	relists         atomic.Uint64
}

// New connects to etcd, checks that it answers within cfg.DialTimeout, and
// starts watching the membership prefix. Of opts, it uses WithLogger and
// WithBackoff (default 100ms doubling to 1s; it also bounds
// the gRPC reconnect backoff, 120s by default in grpc-go).
func New(ctx context.Context, cfg Config, opts ...cluster.Option) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := backend.NewOptions(opts...)
	o.Backoff = o.Backoff.Or(defaultBackoff)
	eps, tcp, _ := cfg.endpoints()
	// The files are read before the context is looked at: cluster.Check
	// validates a configuration by calling New with an ended context.
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("etcd: not connecting to %s: the context has already ended: %w", cfg.Endpoints, err)
	}
	if err := backend.AllRefused(ctx, tcp); err != nil {
		return nil, fmt.Errorf("etcd: %w (check cluster.etcd.endpoints / SW_CLUSTER_ETCD_ENDPOINTS)", err)
	}
	ccfg := clientv3.Config{
		Endpoints:   eps,
		DialTimeout: cfg.DialTimeout,
		TLS:         tlsCfg,
		Logger:      zap.NewNop(),
		// Keepalive pings find a dead connection long before the lease TTL.
		DialKeepAliveTime:    cfg.TTL / 3,
		DialKeepAliveTimeout: cfg.TTL / 3,
		// grpc-go's reconnect backoff grows to 120s: a server back after an
		// outage would wait that long for the client to try again.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff(o.Backoff)})},
	}
	if cfg.Authentication {
		ccfg.Username, ccfg.Password = cfg.User, cfg.Password
	}
	client, err := clientv3.New(ccfg)
	if err != nil {
		return nil, fmt.Errorf("etcd: connecting to %s: %w (%s)", cfg.Endpoints, err, cfg.whatToCheck(err))
	}
	c := &Coordinator{cfg: cfg, opts: o, client: client, prefix: cfg.prefix(), selfGone: make(chan int64, 1)}

	// Fail fast on a wrong address instead of retrying in the background forever.
	probe, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	resp, err := client.Get(probe, c.prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		client.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("etcd: the context ended before %s answered (check cluster.etcd.endpoints / SW_CLUSTER_ETCD_ENDPOINTS, and that the server answers): %w", cfg.Endpoints, ctx.Err())
		}
		return nil, fmt.Errorf("etcd: %s did not answer within %s (cluster.etcd.dialTimeout) a read of %s: %w (%s)", cfg.Endpoints, cfg.DialTimeout, c.prefix, err, cfg.whatToCheck(err))
	}

	c.life.Init("etcd", registrar{c}, cfg.DialTimeout)
	c.ctx = c.life.Context()
	c.life.Go(func() { c.watchLoop(resp) })
	return c, nil
}

// Logger is the logger the coordinator was given (cluster.WithLogger); a
// Manager or shard group built over it logs there too unless told otherwise.
func (c *Coordinator) Logger() *slog.Logger { return c.opts.Logger }

// Stats returns the coordinator's counters.
func (c *Coordinator) Stats() cluster.Stats {
	return cluster.Stats{Malformed: c.malformed.Count(), Reregistrations: c.reregistrations.Load(), Relists: c.relists.Load()}
}

// Prefix is the key prefix under which nodes are registered.
func (c *Coordinator) Prefix() string { return c.prefix }

func (c *Coordinator) selfID() string { return c.life.RegisteredID() }

// RegisterRemote puts self under a new lease and keeps it there until Close.
// The first put happens before it returns, so an error means self is not
// registered; after that, losses are repaired in the background.
func (c *Coordinator) RegisterRemote(ctx context.Context, self cluster.Node) error {
	return c.life.RegisterRemote(ctx, self)
}

// registrar is the coordinator's part of backend.Lifecycle.
type registrar struct{ c *Coordinator }

func (r registrar) Register(ctx context.Context, self cluster.Node) error {
	c := r.c
	value, err := backend.EncodeNode(self)
	if err != nil {
		return fmt.Errorf("etcd: encoding self: %w", err)
	}
	k := c.prefix + self.ID
	lease, rev, err := c.grantAndPut(ctx, k, string(value), self)
	if err != nil {
		return fmt.Errorf("etcd: registering %s at %s: %w", self.ID, k, err)
	}
	c.mu.Lock()
	c.lease, c.putRev = lease, rev
	c.mu.Unlock()
	return nil
}

func (r registrar) Supervise(ctx context.Context, self cluster.Node) {
	c := r.c
	value, _ := backend.EncodeNode(self) // Register encoded it already
	c.mu.Lock()
	lease, rev := c.lease, c.putRev
	c.mu.Unlock()
	c.supervise(ctx, c.prefix+self.ID, string(value), self, lease, rev)
}

// Update rewrites self's key on its lease (Close marks it leaving).
func (r registrar) Update(ctx context.Context, self cluster.Node) error {
	c := r.c
	value, err := backend.EncodeNode(self)
	if err != nil {
		return err
	}
	c.mu.Lock()
	lease := c.lease
	c.mu.Unlock()
	_, err = c.client.Put(ctx, c.prefix+self.ID, string(value), clientv3.WithLease(lease))
	return err
}

// Deregister revokes the lease, so peers drop this node at once.
func (r registrar) Deregister(ctx context.Context, self cluster.Node) error {
	c := r.c
	c.mu.Lock()
	lease := c.lease
	c.mu.Unlock()
	_, err := c.client.Revoke(ctx, lease)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		// The lease expired (during an outage, say); make sure the key
		// went with it rather than hanging on a lease we never saw.
		_, err = c.client.Delete(ctx, c.prefix+self.ID)
	}
	if err != nil {
		return fmt.Errorf("etcd: revoking the registration lease (it expires by itself within %s): %w", c.cfg.TTL, err)
	}
	return nil
}

// grantAndPut puts k under a new lease and returns the lease and the put's
// revision.
func (c *Coordinator) grantAndPut(ctx context.Context, k, v string, self cluster.Node) (clientv3.LeaseID, int64, error) {
	g, err := c.client.Grant(ctx, int64(c.cfg.TTL/time.Second))
	if err != nil {
		return 0, 0, fmt.Errorf("granting a %s lease: %w", c.cfg.TTL, err)
	}
	rev, err := c.claim(ctx, k, v, self, g.ID)
	if err != nil {
		// Don't leave an orphan lease; it would expire anyway.
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = c.client.Revoke(rctx, g.ID)
		cancel()
		return 0, 0, err
	}
	return g.ID, rev, nil
}

// claim puts k on lease unless a live entry of another process holds it:
// a key on another lease (the key exists, so that lease is alive) whose
// node is at another address. It returns the put's revision. Each put is a
// transaction on the revision it checked, so a holder that appears in
// between is seen.
func (c *Coordinator) claim(ctx context.Context, k, v string, self cluster.Node, lease clientv3.LeaseID) (int64, error) {
	put := clientv3.OpPut(k, v, clientv3.WithLease(lease))
	absent := clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
	cond := absent
	for range 5 {
		resp, err := c.client.Txn(ctx).If(cond).Then(put).Else(clientv3.OpGet(k)).Commit()
		if err != nil {
			return 0, fmt.Errorf("putting the node key: %w", err)
		}
		if resp.Succeeded {
			return resp.Header.Revision, nil
		}
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			cond = absent // deleted since the check
			continue
		}
		held := kvs[0]
		if held.Lease != int64(lease) {
			// An entry that does not decode is no live node: replace it.
			if holder, err := backend.DecodeNode(held.Value); err == nil {
				if err := backend.CheckTakeover(self, holder); err != nil {
					return 0, err
				}
			}
		}
		cond = clientv3.Compare(clientv3.ModRevision(k), "=", held.ModRevision)
	}
	return 0, fmt.Errorf("putting the node key: %s kept changing under five attempts", k)
}

// supervise keeps the lease alive and, whenever it is lost or our key is
// deleted, registers again. It never gives up; only ctx stops it.
func (c *Coordinator) supervise(ctx context.Context, k, v string, self cluster.Node, lease clientv3.LeaseID, putRev int64) {
	bo := backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
	for {
		alive, err := c.client.KeepAlive(ctx, lease)
		if err == nil {
			c.keepAlive(ctx, alive, k, v, self, lease, putRev)
		}
		if ctx.Err() != nil {
			return
		}
		c.opts.Logger.Warn("herd/etcd: registration lost, registering again", "key", k, "lease", int64(lease), "err", err)
		for {
			if !bo.Wait(ctx) {
				return
			}
			newLease, rev, err := c.grantAndPut(ctx, k, v, self)
			if err == nil {
				lease, putRev = newLease, rev
				c.mu.Lock()
				c.lease = lease
				c.mu.Unlock()
				c.reregistrations.Add(1)
				bo.Reset()
				break
			}
			if ctx.Err() != nil {
				return
			}
			c.opts.Logger.Warn("herd/etcd: registering again failed, will retry", "key", k, "err", err)
		}
	}
}

// keepAlive drains the keepalive channel until the lease is gone. If our key
// is deleted while the lease lives, it puts it back on the same lease.
//
// A deletion at or before putRev is one our latest put already repaired (the
// watch reported the revoke of the previous lease after we re-granted), so it
// is ignored rather than counted as another re-registration.
func (c *Coordinator) keepAlive(ctx context.Context, alive <-chan *clientv3.LeaseKeepAliveResponse, k, v string, self cluster.Node, lease clientv3.LeaseID, putRev int64) {
	for {
		select {
		case _, ok := <-alive:
			if !ok {
				return // expired, revoked, or ctx ended
			}
		case deleted := <-c.selfGone:
			if deleted <= putRev {
				continue
			}
			rev, err := c.claim(ctx, k, v, self, lease)
			if errors.Is(err, cluster.ErrDuplicateID) {
				// Another process took the ID while it was free. Give up
				// this lease; the caller claims again, under a new one,
				// and logs why until the other leaves.
				rctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, _ = c.client.Revoke(rctx, lease)
				cancel()
				return
			}
			if err != nil {
				return // lease gone too: the caller grants a new one
			}
			putRev = rev
			c.reregistrations.Add(1)
		}
	}
}

// watchLoop publishes membership from first, then watches from its revision.
// It lists again after compaction, cancellation or any watch error.
func (c *Coordinator) watchLoop(first *clientv3.GetResponse) {
	bo := backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
	current := map[string]cluster.Node{}
	resp := first
	for {
		if resp == nil {
			ctx, cancel := context.WithTimeout(c.ctx, c.cfg.DialTimeout)
			var err error
			resp, err = c.client.Get(ctx, c.prefix, clientv3.WithPrefix())
			cancel()
			if err != nil {
				if c.ctx.Err() != nil {
					return
				}
				c.opts.Logger.Warn("herd/etcd: listing members failed; keeping the last view", "prefix", c.prefix, "err", err)
				if !bo.Wait(c.ctx) {
					return
				}
				continue
			}
			c.relists.Add(1)
		}
		clear(current)
		for _, kv := range resp.Kvs {
			c.apply(current, string(kv.Key), kv.Value, kv.ModRevision, false)
		}
		c.malformed.Retain(func(k string) bool { _, ok := current[k]; return ok })
		c.publish(current)

		err := c.watchFrom(current, resp.Header.Revision+1)
		if c.ctx.Err() != nil {
			return
		}
		c.opts.Logger.Warn("herd/etcd: watch ended; listing again", "prefix", c.prefix, "err", err)
		resp = nil
		if !bo.Wait(c.ctx) {
			return
		}
	}
}

// watchFrom applies watch events until the watch fails, and says why.
func (c *Coordinator) watchFrom(current map[string]cluster.Node, rev int64) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(c.ctx))
	defer cancel()
	for wr := range c.client.Watch(ctx, c.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			c.apply(current, string(ev.Kv.Key), ev.Kv.Value, ev.Kv.ModRevision, ev.Type == clientv3.EventTypeDelete)
		}
		c.publish(current)
	}
	return errors.New("watch channel closed")
}

// apply folds one key into current. A value that does not decode removes the
// key from the view and is counted once per write.
func (c *Coordinator) apply(current map[string]cluster.Node, k string, v []byte, modRev int64, deleted bool) {
	if deleted {
		delete(current, k)
		c.malformed.Forget(k)
		if id := c.selfID(); id != "" && k == c.prefix+id {
			c.nudgeSelfGone(modRev)
		}
		return
	}
	n, err := c.decode(k, v)
	if err != nil {
		delete(current, k)
		if c.malformed.Report(k, uint64(modRev)) {
			c.opts.Logger.Warn("herd/etcd: skipping a malformed node entry", "key", k, "err", err)
		}
		return
	}
	c.malformed.Forget(k)
	current[k] = n
}

// nudgeSelfGone tells the supervisor our key was deleted at rev. A nudge
// still waiting is replaced, never kept in place of a newer one: the waiting
// one may be stale, and dropping the newer would leave the deletion unrepaired.
// The watch loop is the only sender.
func (c *Coordinator) nudgeSelfGone(rev int64) {
	for {
		select {
		case c.selfGone <- rev:
			return
		default:
		}
		select {
		case <-c.selfGone:
		default:
		}
	}
}

// decode parses the value at key k; its ID must match the key.
func (c *Coordinator) decode(k string, v []byte) (cluster.Node, error) {
	n, err := backend.DecodeNode(v)
	if err == nil && c.prefix+n.ID != k {
		err = fmt.Errorf("entry's id %q does not match its key", n.ID)
	}
	return n, err
}

func (c *Coordinator) publish(current map[string]cluster.Node) {
	nodes := make([]cluster.Node, 0, len(current))
	for _, n := range current {
		nodes = append(nodes, n)
	}
	c.life.View.Publish(nodes, c.selfID())
}

// QueryRemoteNodes lists the prefix directly. Entries that do not decode are
// left out (and counted by the watch, not here).
func (c *Coordinator) QueryRemoteNodes(ctx context.Context) ([]cluster.Node, error) {
	if c.ctx.Err() != nil {
		return nil, cluster.ErrClosed
	}
	resp, err := c.client.Get(ctx, c.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd: listing %s: %w", c.prefix, err)
	}
	nodes := make([]cluster.Node, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if n, err := c.decode(string(kv.Key), kv.Value); err == nil {
			nodes = append(nodes, n)
		}
	}
	return backend.Sorted(nodes, c.selfID()), nil
}

// Watch pushes the member list after every change.
func (c *Coordinator) Watch(ctx context.Context) <-chan []cluster.Node {
	return c.life.View.Subscribe(ctx)
}

// Close resigns every leadership and ends every campaign, revokes the lease,
// so peers drop this node at once, then stops every
// goroutine and closes the client. It is safe to call more than once.
func (c *Coordinator) Close() error {
	return c.life.Close(func() error {
		c.life.Wait() // the client outlives the watch and the elections
		if err := c.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("etcd: closing client: %w", err)
		}
		return nil
	})
}
