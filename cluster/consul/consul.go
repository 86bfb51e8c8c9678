// Package consul is herd's Consul coordinator (github.com/hashicorp/consul/api).
//
// Each node registers with its agent as an instance of the configured
// service (ID = node ID) with a TTL health check that herd keeps passing, and
// DeregisterCriticalServiceAfter so that a node that died without leaving is
// reaped. Membership is pushed by blocking queries on the service's passing
// instances. When the agent forgets the service (an agent restart loses it,
// or the check update answers 404) herd registers again; when an agent stops
// answering, herd moves to the next one in hostPort.
//
// It registers itself under the name "consul":
//
//	import _ "github.com/herd-go/herd/cluster/consul"
package consul

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/herd-go/herd/backoff"
	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// section is this backend's part of herd's built-in configuration.
//
//go:embed config.yaml
var section []byte

func init() { backend.Register("consul", section, DefaultConfig, New) }

// defaultBackoff bounds the delays after errors.
// The cap is short so that an agent that comes back is seen within about a
// second: one request a second per node is no load for an agent.
var defaultBackoff = cluster.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}

// Coordinator registers self with a Consul agent and watches the service.
type Coordinator struct {
	cfg        Config
	opts       cluster.Options
	clients    []*api.Client // one per agent in hostPort
	transports []*http.Transport
	current    atomic.Int32 // index of the agent in use

	life backend.Lifecycle
	ctx  context.Context // life's: ends at Close

	malformed       backend.Malformed
	reregistrations atomic.Uint64
	switches        atomic.Uint64

	restart restartGrace
}

// restartGrace keeps a restarted agent's critical checks from shrinking
// the view. An agent restored from its data after an outage longer than
// CheckTTL brings every TTL check back critical, and each stays so until
// its owner passes it again (within CheckTTL/3 of the agent's return):
// read as passing-only, every live node would drop out of every view for
// that moment. So for one CheckTTL after the agent answers again, a node
// that was listed before the outage and is still registered stays listed
// while its check is critical; one still critical after that is dropped.
// A node that deregistered (a graceful leave) is gone from the catalog
// and leaves at once.
type restartGrace struct {
	mu     sync.Mutex
	down   bool            // the last query failed
	until  time.Time       // end of the grace after the agent's return
	listed map[string]bool // the nodes listed before the outage
}

// failed notes that a query failed.
func (g *restartGrace) failed() {
	g.mu.Lock()
	g.down = true
	g.mu.Unlock()
}

// answered notes a successful query at now and returns whether the grace
// applies to it, and the nodes it keeps.
func (g *restartGrace) answered(now time.Time, ttl time.Duration) (bool, map[string]bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down {
		g.down, g.until = false, now.Add(ttl)
	}
	return now.Before(g.until), g.listed
}

// left is how long the current grace lasts; 0 outside one.
func (g *restartGrace) left() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(0, time.Until(g.until))
}

// remember records the nodes listed, outside a grace, for the next one.
func (g *restartGrace) remember(nodes []cluster.Node) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down || time.Now().Before(g.until) {
		return
	}
	g.listed = make(map[string]bool, len(nodes))
	for _, n := range nodes {
		g.listed[n.ID] = true
	}
}

// service queries the service's instances with q: the passing ones, and,
// during a restart grace, also the critical ones listed before the outage.
func (c *Coordinator) service(a *api.Client, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error) {
	entries, meta, err := a.Health().Service(c.cfg.ServiceName, "", false, q)
	if err != nil {
		c.restart.failed()
		return nil, nil, err
	}
	grace, listed := c.restart.answered(time.Now(), c.cfg.CheckTTL)
	kept := entries[:0]
	for _, e := range entries {
		if e.Checks.AggregatedStatus() == api.HealthPassing || grace && e.Service != nil && listed[e.Service.ID] {
			kept = append(kept, e)
		}
	}
	return kept, meta, nil
}

// New connects to the first agent in cfg.HostPort that answers within
// cfg.Timeout and starts watching the service. Of opts, it uses WithLogger
// and WithBackoff (default 100ms doubling to 1s).
func New(ctx context.Context, cfg Config, opts ...cluster.Option) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := backend.NewOptions(opts...)
	o.Backoff = o.Backoff.Or(defaultBackoff)
	c := &Coordinator{cfg: cfg, opts: o}
	for _, h := range cfg.hosts() {
		acfg := api.DefaultNonPooledConfig()
		acfg.Address, acfg.Token, acfg.Datacenter = h, cfg.ACLToken, cfg.Datacenter
		if cfg.TLSCAFile != "" || cfg.TLSCertFile != "" {
			acfg.Scheme = "https"
			acfg.TLSConfig = api.TLSConfig{CAFile: cfg.TLSCAFile, CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile}
		}
		client, err := api.NewClient(acfg)
		if err != nil {
			return nil, &cluster.ConfigError{Key: key("hostPort"), Value: h, Accepted: "a reachable Consul agent host:port, with readable TLS files if set", Err: err}
		}
		c.clients = append(c.clients, client)
		c.transports = append(c.transports, acfg.Transport)
	}
	// Checked after the clients, which read the TLS files: cluster.Check
	// validates a configuration by calling New with an ended context.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("consul: not connecting to %s: the context has already ended: %w", cfg.HostPort, err)
	}
	var errs error
	for i := range c.clients {
		pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		_, err := c.clients[i].Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(pctx))
		if err == nil {
			if refused := checkToken(pctx, c.clients[i]); refused != nil {
				cancel()
				return nil, fmt.Errorf("consul: agent %s refused the ACL token: %w (check cluster.consul.aclToken / SW_CLUSTER_CONSUL_ACLTOKEN)", cfg.hosts()[i], refused)
			}
		}
		cancel()
		if err == nil {
			c.current.Store(int32(i))
			c.life.Init("consul", registrar{c}, cfg.Timeout)
			c.ctx = c.life.Context()
			c.life.Go(c.watchLoop)
			return c, nil
		}
		errs = errors.Join(errs, err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("consul: the context ended before an agent in %q answered (check cluster.consul.hostPort / SW_CLUSTER_CONSUL_HOST_PORT, and that the agent answers): %w", cfg.HostPort, ctx.Err())
	}
	return nil, fmt.Errorf("consul: no agent in %q answered within %s: %w (check cluster.consul.hostPort / SW_CLUSTER_CONSUL_HOST_PORT, and the ACL token)", cfg.HostPort, cfg.Timeout, errs)
}

// checkToken asks the agent about the ACL token, so that a token it does
// not know fails at start rather than at the first registration. Only a
// refusal (403) counts: an agent without ACLs answers 401, and any other
// failure is the watch's to report.
func checkToken(ctx context.Context, a *api.Client) error {
	_, _, err := a.ACL().TokenReadSelf((&api.QueryOptions{}).WithContext(ctx))
	var se api.StatusError
	if errors.As(err, &se) && se.Code == 403 {
		return err
	}
	return nil
}

// Logger is the logger the coordinator was given (cluster.WithLogger); a
// Manager or shard group built over it logs there too unless told otherwise.
func (c *Coordinator) Logger() *slog.Logger { return c.opts.Logger }

// Stats returns the coordinator's counters.
func (c *Coordinator) Stats() cluster.Stats {
	return cluster.Stats{Malformed: c.malformed.Count(), Reregistrations: c.reregistrations.Load(), AgentSwitches: c.switches.Load()}
}

func (c *Coordinator) agent() *api.Client { return c.clients[c.current.Load()] }

// nextAgent moves to the next agent after the one that failed.
func (c *Coordinator) nextAgent(failed *api.Client) {
	if len(c.clients) < 2 {
		return
	}
	i := c.current.Load()
	if c.clients[i] == failed && c.current.CompareAndSwap(i, (i+1)%int32(len(c.clients))) {
		c.switches.Add(1)
	}
}

func (c *Coordinator) selfID() string { return c.life.RegisteredID() }

func checkID(id string) string { return "herd:" + id }

func (c *Coordinator) register(ctx context.Context, a *api.Client, n cluster.Node) error {
	if err := c.checkHolder(ctx, a, n); err != nil {
		return err
	}
	reg := &api.AgentServiceRegistration{
		ID:      n.ID,
		Name:    c.cfg.ServiceName,
		Address: n.Address.Host,
		Port:    n.Address.Port,
		Meta:    n.Meta,
		Check: &api.AgentServiceCheck{
			CheckID:                        checkID(n.ID),
			Name:                           "herd liveness",
			TTL:                            c.cfg.CheckTTL.String(),
			Status:                         api.HealthPassing,
			DeregisterCriticalServiceAfter: c.cfg.DeregisterCriticalServiceAfter.String(),
		},
	}
	return a.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx))
}

// checkHolder refuses n's ID when a passing instance of the service, kept
// passing by another live process, holds it at another address. An
// instance whose check is critical (its process stopped passing it) is no
// holder. Consul has no compare-and-set on service registration, so two
// processes registering one ID in the same instant can both pass this.
func (c *Coordinator) checkHolder(ctx context.Context, a *api.Client, n cluster.Node) error {
	entries, _, err := a.Health().Service(c.cfg.ServiceName, "", true, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("looking for another holder of ID %s: %w", n.ID, err)
	}
	for _, e := range entries {
		if e.Service == nil || e.Service.ID != n.ID {
			continue
		}
		host := e.Service.Address
		if host == "" && e.Node != nil {
			host = e.Node.Address
		}
		if err := backend.CheckTakeover(n, cluster.Node{ID: n.ID, Address: cluster.Address{Host: host, Port: e.Service.Port}}); err != nil {
			return err
		}
	}
	return nil
}

// RegisterRemote registers self and keeps its check passing until Close.
func (c *Coordinator) RegisterRemote(ctx context.Context, self cluster.Node) error {
	return c.life.RegisterRemote(ctx, self)
}

// registrar is the coordinator's part of backend.Lifecycle.
type registrar struct{ c *Coordinator }

func (r registrar) Register(ctx context.Context, self cluster.Node) error {
	c := r.c
	if err := c.register(ctx, c.agent(), self); err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.Code == 403 {
			return fmt.Errorf("consul: registering %s as service %q: %w (the ACL token, cluster.consul.aclToken / SW_CLUSTER_CONSUL_ACLTOKEN, needs service:write on %q, and service:read and node:read for the catalog)", self.ID, c.cfg.ServiceName, err, c.cfg.ServiceName)
		}
		return fmt.Errorf("consul: registering %s as service %q: %w", self.ID, c.cfg.ServiceName, err)
	}
	return nil
}

// Supervise passes the TTL check every CheckTTL/3. When the agent has
// forgotten self it registers again; when the agent does not answer it moves
// to the next agent and registers there. It never gives up.
func (r registrar) Supervise(ctx context.Context, self cluster.Node) {
	tick := time.NewTicker(r.c.cfg.CheckTTL / 3)
	defer tick.Stop()
	r.c.keepPassing(ctx, self, tick.C)
}

// Update registers self again with its new metadata (Close marks it
// leaving); the check stays passing.
func (r registrar) Update(ctx context.Context, self cluster.Node) error {
	return r.c.register(ctx, r.c.agent(), self)
}

// Deregister removes the service, so peers' blocking queries return at once.
func (r registrar) Deregister(ctx context.Context, self cluster.Node) error {
	c := r.c
	if err := c.agent().Agent().ServiceDeregisterOpts(self.ID, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("consul: deregistering %s (Consul reaps it after %s critical): %w", self.ID, c.cfg.DeregisterCriticalServiceAfter, err)
	}
	return nil
}

// forgotten reports whether err says the agent no longer knows the check:
// 404 from current agents, 500 "does not have associated TTL" from older ones.
func forgotten(err error) bool {
	var se api.StatusError
	if !errors.As(err, &se) {
		return false
	}
	return se.Code == 404 || strings.Contains(se.Body, "does not have associated TTL") || strings.Contains(se.Body, "Unknown check")
}

// keepPassing is Supervise's loop, one round per tick, until ctx ends.
func (c *Coordinator) keepPassing(ctx context.Context, self cluster.Node, ticks <-chan time.Time) {
	bo := backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
	missing := 0 // checks in a row that the watched passing list lacked self
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		if nodes, ok := c.life.View.Load(); ok && !backend.Has(nodes, self.ID) {
			missing++
		} else {
			missing = 0
		}
		if missing >= 3 {
			// The agent answers the check but the catalog lacks us: register
			// again (idempotent) rather than wait for anti-entropy.
			rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
			if err := c.register(rctx, c.agent(), self); err == nil {
				c.reregistrations.Add(1)
				c.opts.Logger.Warn("herd/consul: self was missing from the service's passing instances; registered again", "id", self.ID)
			}
			cancel()
			missing = 0
		}
		for {
			a := c.agent()
			rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
			err := a.Agent().UpdateTTLOpts(checkID(self.ID), "", api.HealthPassing, (&api.QueryOptions{}).WithContext(rctx))
			if err != nil && forgotten(err) {
				err = c.register(rctx, a, self)
				if err == nil {
					c.reregistrations.Add(1)
					c.opts.Logger.Warn("herd/consul: the agent had forgotten this node; registered again", "id", self.ID)
				}
			} else if err != nil && ctx.Err() == nil {
				// The agent is unreachable: register with the next one, if any.
				c.nextAgent(a)
				if b := c.agent(); b != a {
					if err = c.register(rctx, b, self); err == nil {
						c.reregistrations.Add(1)
					}
				}
			}
			cancel()
			if err == nil {
				bo.Reset()
				break
			}
			if ctx.Err() != nil {
				return
			}
			c.opts.Logger.Warn("herd/consul: keeping the registration alive failed; retrying", "id", self.ID, "err", err)
			if !bo.Wait(ctx) {
				return
			}
		}
	}
}

// watchLoop runs blocking queries on the service's passing instances,
// following Consul's rules: reset the index when it goes backwards, never
// use 0 after a first answer, and back off on errors (no busy loop while the
// agent is down).
func (c *Coordinator) watchLoop() {
	bo := backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
	var index uint64
	for c.ctx.Err() == nil {
		a := c.agent()
		var entries []*api.ServiceEntry
		var meta *api.QueryMeta
		var err error
		if index == 0 {
			entries, meta, err = c.firstAnswer(a)
		} else {
			wait := c.cfg.WaitTime
			if left := c.restart.left(); left > 0 {
				wait = min(wait, left+50*time.Millisecond) // asked again when the grace ends
			}
			q := (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(c.ctx)
			entries, meta, err = c.service(a, q)
		}
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.opts.Logger.Warn("herd/consul: watching the service failed; keeping the last view", "service", c.cfg.ServiceName, "err", err)
			c.nextAgent(a)
			index = 0 // another agent's index is not comparable
			if !bo.Wait(c.ctx) {
				return
			}
			continue
		}
		bo.Reset()
		index = nextIndex(index, meta.LastIndex)
		nodes := c.decode(entries, true)
		c.restart.remember(nodes)
		c.life.View.Publish(nodes, c.selfID())
	}
}

// nextIndex is the index of the blocking query that follows an answer at
// last to one asked at prev, by Consul's rules: start over when the index went
// backwards (a restored or another server), and never block on 0.
func nextIndex(prev, last uint64) uint64 {
	switch {
	case last < prev:
		return 0
	case last == 0:
		return 1
	default:
		return last
	}
}

// A Consul server with no leader holds each request and looks for a leader
// again after waits that double from 437ms (RPCHoldTimeout/16), so a query
// made while the cluster elects one can come back seconds after the leader
// is there: 9.5s and 12s after an agent's restart in the tests. A query made
// after the election is answered at once. So the watch's queries that do not
// block are asked again every askAgainAfter while none has been answered,
// the first answer winning; at most maxAsks wait at once, the oldest ended
// to make room (an agent slower than that window to list the service is
// then asked for ever, and logs each miss).
const (
	askAgainAfter = 500 * time.Millisecond
	maxAsks       = 8
)

// firstAnswer lists the service's passing instances without blocking (the
// watch's first query, and its first after an error). It fails when every
// question still waiting has failed. No question outlives it.
func (c *Coordinator) firstAnswer(a *api.Client) ([]*api.ServiceEntry, *api.QueryMeta, error) {
	type answer struct {
		n       int
		entries []*api.ServiceEntry
		meta    *api.QueryMeta
		err     error
	}
	ctx, endAll := context.WithCancel(c.ctx)
	answers := make(chan answer)
	var wg sync.WaitGroup
	defer func() {
		endAll()
		go func() { wg.Wait(); close(answers) }()
		for range answers { // the ended questions' answers
		}
	}()
	waiting := map[int]context.CancelFunc{}
	asked := 0
	ask := func() {
		if len(waiting) == maxAsks {
			oldest := asked
			for n := range waiting {
				oldest = min(oldest, n)
			}
			waiting[oldest]()
			delete(waiting, oldest)
		}
		qctx, end := context.WithCancel(ctx)
		n := asked
		asked++
		waiting[n] = end
		wg.Add(1)
		go func() {
			defer wg.Done()
			entries, meta, err := c.service(a, (&api.QueryOptions{}).WithContext(qctx))
			answers <- answer{n, entries, meta, err}
		}()
	}
	ask()
	again := time.NewTicker(askAgainAfter)
	defer again.Stop()
	for {
		select {
		case ans := <-answers:
			if ans.err == nil {
				return ans.entries, ans.meta, nil
			}
			end, ok := waiting[ans.n]
			if !ok {
				continue // ended to make room
			}
			end()
			delete(waiting, ans.n)
			if len(waiting) == 0 {
				return nil, nil, ans.err
			}
		case <-again.C:
			c.opts.Logger.Debug("herd/consul: no answer yet to the watch's first query; asking again", "service", c.cfg.ServiceName, "asked", asked)
			ask()
		}
	}
}

// decode turns service entries into nodes, skipping (and, when count is
// set, counting) the ones that are not valid nodes.
func (c *Coordinator) decode(entries []*api.ServiceEntry, count bool) []cluster.Node {
	nodes := make([]cluster.Node, 0, len(entries))
	present := map[string]bool{}
	for _, e := range entries {
		if e.Service == nil {
			continue
		}
		host := e.Service.Address
		if host == "" && e.Node != nil {
			host = e.Node.Address
		}
		n := cluster.Node{ID: e.Service.ID, Address: cluster.Address{Host: host, Port: e.Service.Port}, Meta: e.Service.Meta}
		if len(n.Meta) == 0 {
			n.Meta = nil
		}
		k := e.Service.ID
		present[k] = true
		if err := n.Validate(); err != nil {
			if count && c.malformed.Report(k, e.Service.ModifyIndex) {
				c.opts.Logger.Warn("herd/consul: skipping a service instance that is not a valid node", "service", c.cfg.ServiceName, "id", k, "err", err)
			}
			continue
		}
		nodes = append(nodes, n)
	}
	if count {
		c.malformed.Retain(func(k string) bool { return present[k] })
	}
	return nodes
}

// QueryRemoteNodes asks the agent for the service's passing instances now
// (and, for one CheckTTL after the agent returns from an outage, the ones
// listed before it whose checks have not been passed again yet).
func (c *Coordinator) QueryRemoteNodes(ctx context.Context) ([]cluster.Node, error) {
	if c.ctx.Err() != nil {
		return nil, cluster.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	entries, _, err := c.service(c.agent(), (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("consul: querying service %q: %w", c.cfg.ServiceName, err)
	}
	return backend.Sorted(c.decode(entries, false), c.selfID()), nil
}

// Watch pushes the member list after every change.
func (c *Coordinator) Watch(ctx context.Context) <-chan []cluster.Node {
	return c.life.View.Subscribe(ctx)
}

// Close deregisters self, so peers' blocking queries drop it at once, and
// stops every goroutine. It is safe to call more than once.
func (c *Coordinator) Close() error {
	return c.life.Close(func() error {
		c.life.Wait()
		for _, t := range c.transports {
			t.CloseIdleConnections() // non-pooled transports hold keep-alive goroutines
		}
		return nil
	})
}
