// Package zookeeper is herd's Apache ZooKeeper coordinator
// (github.com/go-zookeeper/zk).
//
// Each node is an ephemeral znode /<root>[/<namespace>]/remote/<node id>
// (SkyWalking's layout) holding the node's JSON. Membership is pushed by a
// children watch re-armed after every event. When the session expires, the
// node is created again in the new session, deleting a znode left by an old
// session first. Connecting is bounded by connectTimeout.
//
// A connection that has had no session for longer than the session timeout,
// or whose every session handshake servers have refused for two seconds, is
// replaced by a new one. That is what brings herd back after a server
// restarted on an empty data directory: it refuses a client that has seen
// a newer zxid than its own, and never tells it that its session expired,
// so the old connection would retry for ever.
//
// It registers itself under the name "zookeeper":
//
//	import _ "github.com/herd-go/herd/cluster/zookeeper"
//
// go-zookeeper v1.0.4 races on its connection's last zxid during a reconnect
// (a torn read only on 32-bit platforms, but go test -race reports it). herd's
// own module builds with a patched copy; a program gets upstream v1.0.4 unless
// it copies herd's third_party/go-zookeeper and adds to its go.mod:
//
//	replace github.com/go-zookeeper/zk => ./third_party/go-zookeeper/zk
//
// docs/backends/zookeeper.md in herd's repository says more.
package zookeeper

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/herd-go/herd/backoff"
	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// section is this backend's part of herd's built-in configuration.
//
//go:embed config.yaml
var section []byte

func init() { backend.Register("zookeeper", section, DefaultConfig, New) }

// Coordinator registers self as an ephemeral znode and watches its siblings.
type Coordinator struct {
	cfg  Config
	opts cluster.Options
	acl  []zk.ACL
	path string

	connMu      sync.Mutex // serialises replacing conn with closing it
	conn        atomic.Pointer[link]
	connections atomic.Uint64

	life     backend.Lifecycle
	ctx      context.Context // life's: ends at Close
	sessions chan struct{}   // nudged on every new or resumed session
	selfGone chan struct{}   // nudged when the watch no longer sees self

	malformed       backend.Malformed
	reregistrations atomic.Uint64
	reads           atomic.Uint64 // member znodes read (Stats.EntryReads)
}

type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, a ...any) {
	z.l.Debug("herd/zookeeper: client: " + fmt.Sprintf(format, a...))
}

// New connects, waits for a session for at most cfg.ConnectTimeout, creates
// the remote path if needed and starts watching it. Of opts, it uses
// WithLogger and WithBackoff: retries start at cfg.BaseSleepTimeMs unless
// the backoff sets Initial, and double up to Max (default 1s, so that a server that comes back is seen within about a second).
func New(ctx context.Context, cfg Config, opts ...cluster.Option) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := backend.NewOptions(opts...)
	o.Backoff = o.Backoff.Or(cfg.defaultBackoff())
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("zookeeper: not connecting to %s: the context has already ended: %w", cfg.HostPort, err)
	}
	if err := backend.AllRefused(ctx, cfg.hosts()); err != nil {
		return nil, fmt.Errorf("zookeeper: %w (check cluster.zookeeper.hostPort / SW_CLUSTER_ZK_HOST_PORT)", err)
	}
	sock := &lastConn{}
	conn, events, err := connect(cfg, o.Logger, sock.dial)
	if err != nil {
		return nil, &cluster.ConfigError{Key: key("hostPort"), Value: cfg.HostPort, Accepted: "resolvable host:port pairs (SW_CLUSTER_ZK_HOST_PORT)", Err: err}
	}
	if err := awaitSession(ctx, events, cfg.ConnectTimeout); err != nil {
		// A server that accepted the connection but never answers keeps the
		// client in its handshake read for ten receive timeouts (over a
		// minute by default); closing the socket, and refusing new ones,
		// ends that at once.
		sock.close()
		conn.discard(events)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("zookeeper: the context ended before a session with %s (check cluster.zookeeper.hostPort / SW_CLUSTER_ZK_HOST_PORT, and that the server answers): %w", cfg.HostPort, ctx.Err())
		}
		return nil, fmt.Errorf("zookeeper: %w with %s (cluster.zookeeper.connectTimeout; check cluster.zookeeper.hostPort / SW_CLUSTER_ZK_HOST_PORT)", err, cfg.HostPort)
	}
	c := &Coordinator{cfg: cfg, opts: o, path: cfg.remotePath(),
		sessions: make(chan struct{}, 1), selfGone: make(chan struct{}, 1)}
	c.conn.Store(conn)
	c.acl = zk.WorldACL(zk.PermAll)
	if cfg.EnableACL {
		user, pass, _ := strings.Cut(cfg.Expression, ":")
		if err := conn.AddAuth("digest", []byte(cfg.Expression)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("zookeeper: adding digest auth: %w", err)
		}
		c.acl = zk.DigestACL(zk.PermAll, user, pass)
	}
	c.life.Init("zookeeper", registrar{c}, cfg.ConnectTimeout)
	c.ctx = c.life.Context()
	c.life.Go(func() { c.eventLoop(events) })
	if err := c.ensurePath(); err != nil {
		_ = c.life.Close(c.closeConn)
		return nil, fmt.Errorf("zookeeper: creating %s: %w (with enableACL, the expression must match the ACL on existing znodes)", c.path, err)
	}
	c.life.Go(c.watchLoop)
	c.life.Go(c.keepConnected)
	return c, nil
}

// zk is the current connection.
func (c *Coordinator) zk() *link { return c.conn.Load() }

// keepConnected replaces the connection once it has gone without a session
// for longer than the session timeout, or once servers have taken its
// connections but refused every session handshake for refusedLimit: the
// server has expired the session by then, or it is a new server that will
// never take it (see the package comment). A new connection's session is a
// new one, which the supervisor and the watch treat as they treat an expired
// session.
func (c *Coordinator) keepConnected() {
	// A quarter of the shortest session timeout allowed (1s): the checks
	// are two atomic loads.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastSession := time.Now()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		conn := c.zk()
		if conn.State() == zk.StateHasSession {
			lastSession = time.Now()
			continue
		}
		switch {
		case time.Since(lastSession) > c.cfg.SessionTimeout:
			if err := c.reconnect(false); err != nil {
				c.opts.Logger.Warn("herd/zookeeper: replacing the connection failed; retrying", "err", err)
			}
			lastSession = time.Now() // give the new connection a session timeout of its own
		case conn.ring.refusedFor() >= refusedLimit:
			// On success the next tick sees the new connection's session.
			if err := c.reconnect(true); err != nil {
				c.opts.Logger.Debug("herd/zookeeper: sessions refused, but not only to this connection; keeping it", "err", err)
			}
		}
	}
}

// refusedLimit is how long servers may take connections but refuse every
// session on them before herd tries a fresh connection. A server restarted on
// its data takes the old session back within a second of accepting
// connections; an empty one refuses a client that has seen a newer zxid for
// ever, and says nothing the client could tell from a server that is still
// starting, or from a proxy that takes connections and closes them.
const refusedLimit = 2 * time.Second

// probeWait is how long a fresh connection, tried because the current one's
// sessions are refused, has to get a session; oldGrace is how long the
// current one then has to get its own back (a partition that just healed)
// before the fresh one replaces it.
const (
	probeWait = time.Second
	oldGrace  = 2 * redialMax
)

// reconnect replaces the connection with a new one. With probe, the new one
// must first get a session within probeWait while the current one stays
// without; otherwise it is dropped and the current one kept, so that a
// network path that refuses every connection (a partition behind a proxy)
// does not cost the session.
func (c *Coordinator) reconnect(probe bool) error {
	conn, events, err := connect(c.cfg, c.opts.Logger, net.DialTimeout)
	if err != nil {
		return err
	}
	if probe {
		err := awaitSession(c.ctx, events, probeWait)
		if err == nil && c.awaitOldSession(oldGrace) {
			err = errors.New("the current connection got its session back")
		}
		if err != nil {
			go conn.discard(events)
			return fmt.Errorf("a fresh connection: %w", err)
		}
		nudge(c.sessions) // awaitSession took the event the event loop would have seen
	}
	c.connMu.Lock()
	if c.ctx.Err() != nil {
		c.connMu.Unlock()
		conn.discard(events)
		return nil
	}
	old := c.conn.Swap(conn)
	c.life.Go(func() { c.eventLoop(events) })
	c.connMu.Unlock()
	old.Close() // ends the watch armed on it, which re-arms on the new one
	c.connections.Add(1)
	c.opts.Logger.Warn("herd/zookeeper: no session for longer than the session timeout, or every session refused; connecting afresh", "hosts", c.cfg.HostPort)
	if c.cfg.EnableACL {
		// Waits for the new session; Close ends the wait.
		if err := conn.AddAuth("digest", []byte(c.cfg.Expression)); err != nil {
			return fmt.Errorf("adding digest auth: %w", err)
		}
	}
	return nil
}

// awaitOldSession reports whether the current connection has a session
// within d.
func (c *Coordinator) awaitOldSession(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if c.zk().State() == zk.StateHasSession {
			return true
		}
		if time.Now().After(deadline) || c.ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastConn dials for the zk client and keeps the connection it made last,
// so that start-up can close it, and refuse new ones, when it gives up.
type lastConn struct {
	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

func (l *lastConn) dial(network, address string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, errors.New("zookeeper: start-up gave up")
	}
	l.conn = c
	return c, nil
}

func (l *lastConn) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.conn != nil {
		l.conn.Close()
	}
}

func awaitSession(ctx context.Context, events <-chan zk.Event, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return nil
			}
			if ev.State == zk.StateAuthFailed {
				return errors.New("authentication failed")
			}
		case <-timer.C:
			return fmt.Errorf("no session within %s", d)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// eventLoop drains the client's session events, which must always be read,
// and nudges the supervisor whenever a session is (re)established.
func (c *Coordinator) eventLoop(events <-chan zk.Event) {
	for ev := range events {
		if ev.Type != zk.EventSession {
			continue
		}
		switch ev.State {
		case zk.StateHasSession:
			nudge(c.sessions)
		case zk.StateExpired:
			c.opts.Logger.Warn("herd/zookeeper: session expired; a new one will be created and self registered again")
		}
	}
}

func nudge(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *Coordinator) backoff() *backoff.Backoff {
	return backoff.New(c.opts.Backoff.Initial, c.opts.Backoff.Max)
}

// Logger is the logger the coordinator was given (cluster.WithLogger); a
// Manager or shard group built over it logs there too unless told otherwise.
func (c *Coordinator) Logger() *slog.Logger { return c.opts.Logger }

// Stats returns the coordinator's counters.
func (c *Coordinator) Stats() cluster.Stats {
	return cluster.Stats{Malformed: c.malformed.Count(), Reregistrations: c.reregistrations.Load(), Reconnections: c.connections.Load(), EntryReads: c.reads.Load()}
}

// Path is the znode whose children are the nodes.
func (c *Coordinator) Path() string { return c.path }

func (c *Coordinator) ensurePath() error { return c.ensure(c.path) }

// ensure creates path and its parents, as persistent znodes.
func (c *Coordinator) ensure(path string) error {
	p := ""
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		p += "/" + part
		if _, err := c.zk().Create(p, nil, 0, c.acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
	}
	return nil
}

func (c *Coordinator) selfID() string { return c.life.RegisteredID() }

// createSelf makes self's ephemeral znode in the current session. A znode
// at the same path owned by another session (ours before it expired, or a
// previous process with this ID) is deleted first.
func (c *Coordinator) createSelf(p string, data []byte, self cluster.Node) error {
	// One connection throughout: an owner compared with another
	// connection's session would look stale.
	conn := c.zk()
	for attempt := 0; attempt < 3; attempt++ {
		_, err := conn.Create(p, data, zk.FlagEphemeral, c.acl)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, zk.ErrNoNode):
			if err := c.ensurePath(); err != nil {
				return err
			}
			continue
		case !errors.Is(err, zk.ErrNodeExists):
			return err
		}
		held, stat, err := conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return err
		}
		if stat.EphemeralOwner == conn.SessionID() {
			_, err := conn.Set(p, data, stat.Version)
			return err
		}
		// An ephemeral znode lives only as long as its session: another
		// live process's, unless it is at our address (ours, restarted).
		// A persistent one, or one that does not decode, is no node.
		if holder, err := backend.DecodeNode(held); err == nil && stat.EphemeralOwner != 0 {
			if err := backend.CheckTakeover(self, holder); err != nil {
				return err
			}
		}
		// Delete and create in one transaction: watchers never see the
		// node missing, where a delete then a create would show every peer
		// a view without it in between (after a server restart, when this
		// node's new session takes over its old session's znode).
		res, err := conn.Multi(&zk.DeleteRequest{Path: p, Version: stat.Version}, &zk.CreateRequest{Path: p, Data: data, Acl: c.acl, Flags: zk.FlagEphemeral})
		for _, r := range res {
			if err == nil && r.Error != nil {
				err = r.Error
			}
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, zk.ErrNoNode), errors.Is(err, zk.ErrBadVersion):
			continue // changed meanwhile: look again
		default:
			return fmt.Errorf("replacing a stale znode of session %#x: %w", stat.EphemeralOwner, err)
		}
	}
	return fmt.Errorf("%s kept changing while being created", p)
}

// RegisterRemote creates self's ephemeral znode and keeps it until Close.
func (c *Coordinator) RegisterRemote(ctx context.Context, self cluster.Node) error {
	return c.life.RegisterRemote(ctx, self)
}

// registrar is the coordinator's part of backend.Lifecycle.
type registrar struct{ c *Coordinator }

func (r registrar) Register(_ context.Context, self cluster.Node) error {
	data, err := backend.EncodeNode(self)
	if err != nil {
		return fmt.Errorf("zookeeper: encoding self: %w", err)
	}
	p := r.c.path + "/" + self.ID
	if err := r.c.createSelf(p, data, self); err != nil {
		return fmt.Errorf("zookeeper: registering %s at %s: %w", self.ID, p, err)
	}
	return nil
}

func (r registrar) Supervise(ctx context.Context, self cluster.Node) {
	data, _ := backend.EncodeNode(self) // Register encoded it already
	r.c.supervise(ctx, r.c.path+"/"+self.ID, data, self)
}

// Update rewrites self's znode (Close marks it leaving); peers' data
// watches on it fire.
func (r registrar) Update(_ context.Context, self cluster.Node) error {
	data, err := backend.EncodeNode(self)
	if err != nil {
		return err
	}
	_, err = r.c.zk().Set(r.c.path+"/"+self.ID, data, -1)
	return err
}

// Deregister deletes self's znode. go-zookeeper's Delete takes no context:
// when ctx ends first, Close's shutdown ends the call.
func (r registrar) Deregister(ctx context.Context, self cluster.Node) error {
	deleted := make(chan error, 1)
	go func() {
		e := r.c.zk().Delete(r.c.path+"/"+self.ID, -1)
		if errors.Is(e, zk.ErrNoNode) {
			e = nil
		}
		deleted <- e
	}()
	var err error
	select {
	case err = <-deleted:
	case <-ctx.Done():
		err = fmt.Errorf("no answer within %s; the znode goes when the session expires", r.c.cfg.ConnectTimeout)
	}
	if err != nil {
		return fmt.Errorf("zookeeper: deleting %s: %w", self.ID, err)
	}
	return nil
}

// supervise checks self's znode after every new session, whenever the watch
// misses it, and periodically; it creates it again when it is gone or owned
// by an old session. It never gives up.
func (c *Coordinator) supervise(ctx context.Context, p string, data []byte, self cluster.Node) {
	tick := time.NewTicker(max(c.cfg.SessionTimeout/2, time.Second))
	defer tick.Stop()
	bo := c.backoff()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.sessions:
		case <-c.selfGone:
		case <-tick.C:
			// Without a session the check would only wait in the client's
			// queue (the host ring never fails it), to be sent the instant
			// a session resumes, where go-zookeeper v1.0.4 races its own
			// watch re-arming (lastZxid, upstream PR #35). The new session
			// nudges this loop anyway.
			if c.zk().State() != zk.StateHasSession {
				continue
			}
		}
		for {
			conn := c.zk()
			ok, stat, err := conn.Exists(p)
			if err == nil && ok && stat.EphemeralOwner == conn.SessionID() {
				break
			}
			if err == nil {
				if err = c.createSelf(p, data, self); err == nil {
					c.reregistrations.Add(1)
					c.opts.Logger.Warn("herd/zookeeper: registered self again", "path", p)
					break
				}
			}
			if ctx.Err() != nil {
				return
			}
			c.opts.Logger.Warn("herd/zookeeper: checking self's znode failed; retrying", "path", p, "err", err)
			if !bo.Wait(ctx) {
				return
			}
		}
		bo.Reset()
	}
}

// watchLoop lists the children with a watch, publishes them, and waits for
// the watch to fire; every event re-arms it. Each child's data is read once,
// with a data watch, and kept in a cache by name until that watch fires
// (the znode was rewritten or deleted, or the session ended): a join costs
// the listing and one read, not a read of every member.
func (c *Coordinator) watchLoop() {
	bo := c.backoff()
	cache := map[string]*child{}
	for c.ctx.Err() == nil {
		children, _, fired, err := c.zk().ChildrenW(c.path)
		for err == nil {
			var nodes []cluster.Node
			if nodes, err = c.loadCached(children, cache); err != nil {
				break
			}
			bo.Reset()
			id := c.selfID()
			c.life.View.Publish(nodes, id)
			if id != "" && !slices.Contains(children, id) {
				nudge(c.selfGone)
			}
			switch c.waitChange(fired, cache) {
			case closed:
				return
			case dataChanged:
				continue // read what changed; the children watch still stands
			}
			break // the children changed: list again, re-arming the watch
		}
		if err == nil {
			continue
		}
		if c.ctx.Err() != nil {
			return
		}
		if errors.Is(err, zk.ErrNoNode) {
			err = errors.Join(err, c.ensurePath())
		}
		c.opts.Logger.Warn("herd/zookeeper: watching members failed; keeping the last view", "path", c.path, "err", err)
		if !bo.Wait(c.ctx) {
			return
		}
	}
}

// child is a member znode as last read, until its data watch fires.
type child struct {
	node    cluster.Node
	valid   bool // it decoded as a node named like its znode
	changed <-chan zk.Event
}

// stale reports whether the child's watch fired since it was read.
func (ch *child) stale() bool {
	select {
	case <-ch.changed:
		return true
	default:
		return false
	}
}

// change is what waitChange saw.
type change int

const (
	closed          change = iota // the coordinator closed
	childrenChanged               // the children watch fired
	dataChanged                   // a cached child's data watch fired
)

// waitChange waits until the children watch fires or a cached child's data
// watch does.
func (c *Coordinator) waitChange(fired <-chan zk.Event, cache map[string]*child) change {
	cases := make([]reflect.SelectCase, 0, len(cache)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(fired)})
	for _, ch := range cache {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch.changed)})
	}
	switch chosen, _, _ := reflect.Select(cases); chosen {
	case 0:
		return closed
	case 1:
		return childrenChanged
	}
	return dataChanged
}

// maxParallelReads bounds the reads of member znodes in flight at once; the
// client pipelines them over its one connection.
const maxParallelReads = 16

// read is one child's data read: GetW when watch is set.
type read struct {
	data    []byte
	stat    *zk.Stat
	changed <-chan zk.Event
	err     error
}

// readAll reads the children named, in parallel.
func (c *Coordinator) readAll(names []string, watch bool) []read {
	out := make([]read, len(names))
	conn := c.zk()
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelReads)
	for i, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r := &out[i]
			c.reads.Add(1)
			if watch {
				r.data, r.stat, r.changed, r.err = conn.GetW(c.path + "/" + name)
			} else {
				r.data, r.stat, r.err = conn.Get(c.path + "/" + name)
			}
		})
	}
	wg.Wait()
	return out
}

// decodeChild decodes a member znode's data, requiring the entry's ID to be
// its znode's name.
func decodeChild(name string, data []byte) (cluster.Node, error) {
	n, err := backend.DecodeNode(data)
	if err == nil && n.ID != name {
		err = fmt.Errorf("entry's id %q does not match its znode name", n.ID)
	}
	return n, err
}

// loadCached returns the members among children, reading (with a data
// watch) only those not in cache or whose watch fired. A child that does
// not decode (or whose ID does not match its name) is skipped, and counted
// once per write.
func (c *Coordinator) loadCached(children []string, cache map[string]*child) ([]cluster.Node, error) {
	listed := make(map[string]bool, len(children))
	var missing []string
	for _, name := range children {
		listed[name] = true
		if ch, ok := cache[name]; !ok || ch.stale() {
			delete(cache, name)
			missing = append(missing, name)
		}
	}
	for name := range cache {
		if !listed[name] {
			delete(cache, name)
		}
	}
	for i, r := range c.readAll(missing, true) {
		name := missing[i]
		if errors.Is(r.err, zk.ErrNoNode) {
			continue // left between the listing and the read
		}
		if r.err != nil {
			return nil, r.err
		}
		n, err := decodeChild(name, r.data)
		if err != nil {
			if c.malformed.Report(name, uint64(r.stat.Mzxid)) {
				c.opts.Logger.Warn("herd/zookeeper: skipping a malformed node entry", "path", c.path+"/"+name, "err", err)
			}
		} else {
			c.malformed.Forget(name)
		}
		cache[name] = &child{node: n, valid: err == nil, changed: r.changed}
	}
	c.malformed.Retain(func(k string) bool { return listed[k] })
	nodes := make([]cluster.Node, 0, len(children))
	for _, name := range children {
		if ch, ok := cache[name]; ok && ch.valid {
			nodes = append(nodes, ch.node)
		}
	}
	return nodes, nil
}

// load reads each child's data, in parallel and without a cache: the
// query's answer comes from the server as it is now. Children that do not
// decode are skipped (the watch loop counts them).
func (c *Coordinator) load(children []string) ([]cluster.Node, error) {
	nodes := make([]cluster.Node, 0, len(children))
	for i, r := range c.readAll(children, false) {
		if errors.Is(r.err, zk.ErrNoNode) {
			continue // left between the listing and the read
		}
		if r.err != nil {
			return nil, r.err
		}
		if n, err := decodeChild(children[i], r.data); err == nil {
			nodes = append(nodes, n)
		}
	}
	return nodes, nil
}

// QueryRemoteNodes lists the nodes now. It fails at once while there is no
// session, rather than waiting for one.
func (c *Coordinator) QueryRemoteNodes(ctx context.Context) ([]cluster.Node, error) {
	if c.ctx.Err() != nil {
		return nil, cluster.ErrClosed
	}
	if st := c.zk().State(); st != zk.StateHasSession {
		return nil, fmt.Errorf("zookeeper: no session (state %s)", st)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	children, _, err := c.zk().Children(c.path)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: listing %s: %w", c.path, err)
	}
	nodes, err := c.load(children)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: reading %s: %w", c.path, err)
	}
	return backend.Sorted(nodes, c.selfID()), nil
}

// Watch pushes the member list after every change.
func (c *Coordinator) Watch(ctx context.Context) <-chan []cluster.Node {
	return c.life.View.Subscribe(ctx)
}

// Close deletes self's znode, so peers drop it at once, closes the session
// and stops every goroutine. It is safe to call more than once.
func (c *Coordinator) Close() error {
	return c.life.Close(c.closeConn) // closing the connection also ends a Delete still waiting
}

// closeConn closes the current connection, ending the calls waiting on it.
func (c *Coordinator) closeConn() error {
	c.connMu.Lock()
	c.zk().Close()
	c.connMu.Unlock()
	return nil
}
