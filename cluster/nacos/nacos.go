// Package nacos is herd's Nacos coordinator (github.com/nacos-group/nacos-sdk-go/v2).
//
// Each node is an ephemeral instance of the configured service (group,
// cluster, namespace) whose metadata carries the node ID under "herd.id".
// Membership is pushed by the SDK's subscription; healthy, enabled instances
// with weight above zero count. The SDK's quirks are handled on purpose:
//
//   - An empty instance list is pushed (UpdateCacheWhenEmpty on): with the
//     SDK default, the last node leaving would never reach the callback.
//   - After a reconnect (a server restart, say) the SDK registers and
//     subscribes again by itself; herd also checks every few seconds that
//     self is in the pushed list and registers again if not.
//   - The SDK's log and cache directories default to a per-user cache
//     directory, never the working directory, and its disk cache is not
//     loaded at start (a stale list is not a view).
//
// It registers itself under the name "nacos":
//
//	import _ "github.com/herd-go/herd/cluster/nacos"
package nacos

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// section is this backend's part of herd's built-in configuration.
//
//go:embed config.yaml
var section []byte

func init() { backend.Register("nacos", section, DefaultConfig, New) }

// IDKey is the instance metadata key that carries the node ID.
const IDKey = "herd.id"

// Coordinator registers self with Nacos and follows the service by subscription.
type Coordinator struct {
	cfg    Config
	opts   cluster.Options
	client naming_client.INamingClient
	sub    *vo.SubscribeParam

	life backend.Lifecycle
	ctx  context.Context // life's: ends at Close

	// Elections: the lease records live in Nacos config, reached over the
	// HTTP open API of the first server.
	servers []server
	http    *http.Client
	token   accessToken
	casOnce sync.Mutex
	casOK   bool

	malformed       backend.Malformed
	reregistrations atomic.Uint64
}

// New connects to Nacos, checks that it answers within cfg.Timeout and
// subscribes to the service.
//
// Of opts, it uses WithLogger; the SDK retries on its own schedule.
func New(ctx context.Context, cfg Config, opts ...cluster.Option) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := backend.NewOptions(opts...)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nacos: not connecting to %s: the context has already ended: %w", cfg.HostPort, err)
	}
	servers, _ := cfg.servers()
	var grpcAddrs []string
	for _, sv := range servers {
		grpcAddrs = append(grpcAddrs, net.JoinHostPort(sv.host, strconv.FormatUint(sv.port+1000, 10)))
	}
	if err := backend.AllRefused(ctx, grpcAddrs); err != nil {
		return nil, fmt.Errorf("nacos: %w (the SDK talks gRPC on the HTTP port + 1000; check cluster.nacos.hostPort / SW_CLUSTER_NACOS_HOST_PORT = %s)", err, cfg.HostPort)
	}
	logDir, cacheDir := cfg.dirs()
	for _, d := range []string{logDir, cacheDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, &cluster.ConfigError{Key: key("logDir"), Value: d, Accepted: "a directory herd can create (SW_CLUSTER_NACOS_LOG_DIR, SW_CLUSTER_NACOS_CACHE_DIR)", Err: err}
		}
	}
	sc := serverConfigs(servers, cfg.ContextPath)
	cc := constant.NewClientConfig(
		constant.WithNamespaceId(cfg.namespaceID()),
		constant.WithTimeoutMs(uint64(cfg.Timeout/time.Millisecond)),
		constant.WithNotLoadCacheAtStart(true),
		constant.WithUpdateCacheWhenEmpty(true),
		constant.WithLogDir(logDir),
		constant.WithCacheDir(cacheDir),
		constant.WithLogLevel("warn"),
		constant.WithUsername(cfg.Username),
		constant.WithPassword(cfg.Password),
		constant.WithAccessKey(cfg.AccessKey),
		constant.WithSecretKey(cfg.SecretKey),
	)
	client, err := newNamingClient(ctx, cfg.Timeout, vo.NacosClientParam{ClientConfig: cc, ServerConfigs: sc})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nacos: the context ended before %s answered (check cluster.nacos.hostPort / SW_CLUSTER_NACOS_HOST_PORT; the gRPC port is the HTTP port + 1000): %w", cfg.HostPort, ctx.Err())
		}
		return nil, fmt.Errorf("nacos: connecting to %s: %w (check cluster.nacos.hostPort / SW_CLUSTER_NACOS_HOST_PORT; the gRPC port is the HTTP port + 1000)", cfg.HostPort, err)
	}
	c := &Coordinator{cfg: cfg, opts: o, client: client, servers: servers, http: &http.Client{Timeout: cfg.Timeout}}
	c.life.Init("nacos", registrar{c}, cfg.Timeout)
	c.ctx = c.life.Context()

	// nacos-sdk-go logs a refused login and answers queries as if the
	// service were empty; ask the server directly, so that wrong
	// credentials fail here.
	if cfg.Username != "" {
		if err := checkLogin(ctx, cfg, servers); err != nil {
			_ = c.life.Close(c.closeClient)
			return nil, err
		}
	}

	// Fail fast on a wrong address or credentials.
	if _, err := c.query(ctx); err != nil {
		_ = c.life.Close(c.closeClient)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nacos: the context ended before %s answered (check cluster.nacos.hostPort / SW_CLUSTER_NACOS_HOST_PORT; the gRPC port is the HTTP port + 1000): %w", cfg.HostPort, ctx.Err())
		}
		return nil, fmt.Errorf("nacos: %s did not answer: %w (check cluster.nacos.hostPort / SW_CLUSTER_NACOS_HOST_PORT and the gRPC port +1000; "+
			"if the server has authentication on, cluster.nacos.username and password / SW_CLUSTER_NACOS_USERNAME and SW_CLUSTER_NACOS_PASSWORD, and that user's permission on namespace %q)", cfg.HostPort, err, cfg.namespaceID())
	}
	// Subscribe to the whole service and filter by cluster here: a push for a
	// cluster-filtered subscription is filed under another cache key by some
	// Nacos-compatible servers (r-nacos), and the callback never fires.
	c.sub = &vo.SubscribeParam{ServiceName: cfg.ServiceName, GroupName: cfg.Group, SubscribeCallback: c.onPush}
	if err := client.Subscribe(c.sub); err != nil {
		_ = c.life.Close(c.closeClient)
		return nil, fmt.Errorf("nacos: subscribing to %s@%s: %w", cfg.ServiceName, cfg.Group, err)
	}
	return c, nil
}

// newNamingClient makes the SDK's client within timeout or until ctx ends.
// The SDK's own start-up ignores both: against a server that accepts
// connections but does not answer, it tries three times for three seconds
// each. When the bound passes first, the client the SDK makes afterwards is
// closed as soon as it is made, by a goroutine that ends with it.
func newNamingClient(ctx context.Context, timeout time.Duration, p vo.NacosClientParam) (naming_client.INamingClient, error) {
	type made struct {
		client naming_client.INamingClient
		err    error
	}
	done := make(chan made, 1)
	go func() {
		sdkClients.RLock()
		c, err := clients.NewNamingClient(p)
		sdkClients.RUnlock()
		done <- made{c, err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case m := <-done:
		return m.client, m.err
	case <-ctx.Done():
	case <-timer.C:
	}
	go func() {
		if m := <-done; m.client != nil {
			closeClient(m.client)
		}
	}()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("no answer within %s (cluster.nacos.timeout)", timeout)
}

// sdkClients keeps closing SDK clients apart from making them, the one piece
// of package-level state here besides the provider registration:
// nacos-sdk-go v2.3.5's RpcClient.Shutdown deletes from the SDK's
// package-level client map without the lock its CreateClient takes, so a
// client closed while another is made races (seen under -race: a start-up
// that gave up closed the client the SDK made late while the next start-up
// made one), and so do two closed at once. Making takes the lock shared,
// closing alone; a Close can thus wait for another coordinator's start-up,
// at most the SDK's own (three tries of three seconds).
var sdkClients sync.RWMutex

func closeClient(c naming_client.INamingClient) {
	sdkClients.Lock()
	defer sdkClients.Unlock()
	c.CloseClient()
}

// Logger is the logger the coordinator was given (cluster.WithLogger); a
// Manager or shard group built over it logs there too unless told otherwise.
func (c *Coordinator) Logger() *slog.Logger { return c.opts.Logger }

// Stats returns the coordinator's counters.
func (c *Coordinator) Stats() cluster.Stats {
	return cluster.Stats{Malformed: c.malformed.Count(), Reregistrations: c.reregistrations.Load()}
}

func (c *Coordinator) selfID() string { return c.life.RegisteredID() }

func (c *Coordinator) onPush(instances []model.Instance, err error) {
	if err != nil {
		c.opts.Logger.Warn("herd/nacos: subscription error; keeping the last view", "service", c.cfg.ServiceName, "err", err)
		return
	}
	c.life.View.Publish(c.decode(instances, true), c.selfID())
}

// decode keeps healthy, enabled instances of the configured cluster with
// weight above zero. One
// without a valid herd.id, host or port is skipped and, when count is set,
// counted once.
func (c *Coordinator) decode(instances []model.Instance, count bool) []cluster.Node {
	nodes := make([]cluster.Node, 0, len(instances))
	present := map[string]bool{}
	for _, in := range instances {
		if !in.Healthy || !in.Enable || in.Weight <= 0 || (in.ClusterName != "" && in.ClusterName != c.cfg.ClusterName) {
			continue
		}
		meta := maps.Clone(in.Metadata)
		id := meta[IDKey]
		delete(meta, IDKey)
		if len(meta) == 0 {
			meta = nil
		}
		n := cluster.Node{ID: id, Address: cluster.Address{Host: in.Ip, Port: int(in.Port)}, Meta: meta}
		k := fmt.Sprintf("%s:%d/%s", in.Ip, in.Port, id)
		present[k] = true
		if err := n.Validate(); err != nil {
			if count && c.malformed.Report(k, 0) {
				c.opts.Logger.Warn("herd/nacos: skipping an instance that is not a valid herd node", "service", c.cfg.ServiceName, "instance", k, "err", err)
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

// call runs an SDK call, which has its own timeout but no context, so that
// the caller can stop waiting; the call itself ends within cfg.Timeout.
func (c *Coordinator) call(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	c.life.Go(func() { done <- f() })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Coordinator) query(ctx context.Context) ([]model.Instance, error) {
	// Once subscribed, the SDK answers from its cache even with no server;
	// a query must fail then, so that the caller knows the view is stale.
	if !c.client.ServerHealthy() {
		return nil, errors.New("not connected to any server")
	}
	var out []model.Instance
	err := c.call(ctx, func() error {
		var err error
		out, err = c.client.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: c.cfg.ServiceName, GroupName: c.cfg.Group})
		return err
	})
	return out, err
}

// serverRepeats is how many times each server is listed to the SDK.
// nacos-sdk-go's reconnect loop (rpc_client.go) sleeps 100ms longer after
// each round of its server list, up to 5s, and has no setting for it: with
// one server listed, a client cut off for 20s reconnects up to 2s after the
// server is back, and up to 5s after two minutes. Listed 20 times, a round
// is 20 attempts, so the sleep grows twenty times slower: under half a second
// after 20s, under a second after a minute. The SDK picks among the entries,
// all of them the same servers.
const serverRepeats = 20

// serverConfigs lists the SDK's server configs, each serverRepeats times, on
// the given context path or the SDK's default (/nacos) when it is empty.
func serverConfigs(servers []server, contextPath string) []constant.ServerConfig {
	var sc []constant.ServerConfig
	for _, s := range servers {
		opts := []constant.ServerOption{constant.WithScheme("http")}
		if contextPath != "" {
			opts = append(opts, constant.WithContextPath(contextPath))
		}
		for range serverRepeats {
			sc = append(sc, *constant.NewServerConfig(s.host, s.port, opts...))
		}
	}
	return sc
}

func (c *Coordinator) register(ctx context.Context, n cluster.Node) error {
	if err := c.checkHolder(ctx, n); err != nil {
		return err
	}
	meta := maps.Clone(n.Meta)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[IDKey] = n.ID
	return c.call(ctx, func() error {
		ok, err := c.client.RegisterInstance(vo.RegisterInstanceParam{
			Ip: n.Address.Host, Port: uint64(n.Address.Port), Weight: 1, Enable: true, Healthy: true, Ephemeral: true,
			Metadata: meta, ClusterName: c.cfg.ClusterName, ServiceName: c.cfg.ServiceName, GroupName: c.cfg.Group,
		})
		if err == nil && !ok {
			err = errors.New("the server refused the registration (if it has authentication on: cluster.nacos.username and password, " +
				"SW_CLUSTER_NACOS_USERNAME and SW_CLUSTER_NACOS_PASSWORD, for a user whose role may write the namespace)")
		}
		return err
	})
}

// awaitListed waits, up to cfg.Timeout, until the server lists self. The
// Alibaba server takes a registration at once but lists it a moment later
// (its service index is updated asynchronously); until then a process
// registering the same ID would find it free. So RegisterRemote returns
// once the registration is visible to the others. Not listed in time, it
// is only logged: the registration itself was taken.
func (c *Coordinator) awaitListed(ctx context.Context, self cluster.Node) {
	if len(c.servers) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	for {
		instances, err := c.serverInstances(ctx)
		if err == nil && slices.ContainsFunc(c.decode(instances, false), func(n cluster.Node) bool { return n.ID == self.ID && n.Address == self.Address }) {
			return
		}
		if backend.Sleep(ctx, 20*time.Millisecond, nil) != nil {
			c.opts.Logger.Warn("nacos: the server does not list this node's registration yet; another process may not see the ID as held", "id", self.ID, "within", c.cfg.Timeout, "err", err)
			return
		}
	}
}

// serverInstances lists the service's healthy instances as the server
// holds them now, over the open API.
func (c *Coordinator) serverInstances(ctx context.Context) ([]model.Instance, error) {
	if len(c.servers) == 0 {
		return nil, errors.New("no server address to ask")
	}
	params := url.Values{"serviceName": {c.cfg.ServiceName}, "groupName": {c.cfg.Group}, "namespaceId": {c.cfg.namespaceID()}, "healthyOnly": {"true"}}
	if c.cfg.ClusterName != "" {
		params.Set("clusters", c.cfg.ClusterName)
	}
	status, body, err := c.api(ctx, http.MethodGet, c.apiBase()+"/ns/instance/list", params, nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("listing instances: %d %s", status, strings.TrimSpace(body))
	}
	var svc model.Service
	if err := json.Unmarshal([]byte(body), &svc); err != nil {
		return nil, fmt.Errorf("listing instances: %w", err)
	}
	return svc.Hosts, nil
}

// checkLogin logs in to the first server that answers, over its HTTP API,
// and fails only on a refusal: a server that does not answer is the SDK's
// to report.
func checkLogin(ctx context.Context, cfg Config, servers []server) error {
	for _, s := range servers {
		_, err := login(ctx, cfg, s)
		var refused *loginRefusedError
		if errors.As(err, &refused) {
			return err
		}
		if err == nil {
			return nil
		}
	}
	return nil
}

// loginRefusedError is a server's refusal of the configured credentials.
type loginRefusedError struct{ msg string }

func (e *loginRefusedError) Error() string { return e.msg }

// login logs in to s over the HTTP open API and returns the access token,
// empty from a server that answers without one (authentication off).
func login(ctx context.Context, cfg Config, s server) (string, error) {
	path := cfg.ContextPath
	if path == "" {
		path = "/nacos"
	}
	form := url.Values{"username": {cfg.Username}, "password": {cfg.Password}}
	addr := net.JoinHostPort(s.host, strconv.FormatUint(s.port, 10))
	u := "http://" + addr + "/" + strings.Trim(path, "/") + "/v1/auth/login"
	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		var answer struct {
			AccessToken string `json:"accessToken"`
		}
		_ = json.Unmarshal(body, &answer)
		return answer.AccessToken, nil
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized || strings.Contains(string(body), "not found"):
		return "", &loginRefusedError{fmt.Sprintf("nacos: %s refused the login of user %q: %d %s (check cluster.nacos.username and password / SW_CLUSTER_NACOS_USERNAME and SW_CLUSTER_NACOS_PASSWORD)",
			addr, cfg.Username, resp.StatusCode, strings.TrimSpace(string(body)))}
	}
	return "", fmt.Errorf("nacos: logging in to %s: %d %s", addr, resp.StatusCode, strings.TrimSpace(string(body)))
}

// checkHolder refuses n's ID when a healthy instance at another address
// carries it: an ephemeral instance is healthy while the client that
// registered it stays connected. The instances are asked of the server
// itself (the open API's instance list): the SDK's subscribed view lags the
// server by a push, so a holder that registered a moment ago would pass.
// Nacos has no compare-and-set on registration, so two processes
// registering one ID in the same instant can still both pass this.
func (c *Coordinator) checkHolder(ctx context.Context, n cluster.Node) error {
	instances, err := c.serverInstances(ctx)
	if err != nil {
		c.opts.Logger.Warn("nacos: listing the instances on the server failed; checking the ID against the subscribed view", "err", err)
		instances, err = c.query(ctx)
	}
	if err != nil {
		return fmt.Errorf("looking for another holder of ID %s: %w", n.ID, err)
	}
	for _, holder := range c.decode(instances, false) {
		if holder.ID != n.ID {
			continue
		}
		if err := backend.CheckTakeover(n, holder); err != nil {
			return err
		}
	}
	return nil
}

// RegisterRemote registers self as an ephemeral instance and keeps it
// registered until Close.
func (c *Coordinator) RegisterRemote(ctx context.Context, self cluster.Node) error {
	return c.life.RegisterRemote(ctx, self)
}

// registrar is the coordinator's part of backend.Lifecycle.
type registrar struct{ c *Coordinator }

func (r registrar) Register(ctx context.Context, self cluster.Node) error {
	c := r.c
	if err := c.register(ctx, self); err != nil {
		return fmt.Errorf("nacos: registering %s in %s@%s: %w", self.ID, c.cfg.ServiceName, c.cfg.Group, err)
	}
	c.awaitListed(ctx, self)
	return nil
}

// Supervise checks every SelfCheck that self is registered.
func (r registrar) Supervise(ctx context.Context, self cluster.Node) {
	tick := time.NewTicker(r.c.cfg.selfCheck())
	defer tick.Stop()
	r.c.checkSelf(ctx, self, tick.C)
}

// Update registers self's instance again with its new metadata (Close
// marks it leaving); the server pushes the change to every subscriber.
func (r registrar) Update(ctx context.Context, self cluster.Node) error {
	return r.c.register(ctx, self)
}

// Deregister removes self's instance; the server would also drop it when
// the SDK's connection closes.
func (r registrar) Deregister(ctx context.Context, self cluster.Node) error {
	c := r.c
	err := c.call(ctx, func() error {
		_, err := c.client.DeregisterInstance(vo.DeregisterInstanceParam{
			Ip: self.Address.Host, Port: uint64(self.Address.Port), Cluster: c.cfg.ClusterName,
			ServiceName: c.cfg.ServiceName, GroupName: c.cfg.Group, Ephemeral: true,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("nacos: deregistering %s (the server drops it when the connection closes): %w", self.ID, err)
	}
	return nil
}

// checkSelf registers self again when two ticks in a row find it missing
// from what the server pushes; the SDK's own redo usually gets there first.
// It returns when ctx ends.
func (c *Coordinator) checkSelf(ctx context.Context, self cluster.Node, ticks <-chan time.Time) {
	missing := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		nodes, _ := c.life.View.Load()
		if backend.Has(nodes, self.ID) {
			missing = 0
			continue
		}
		if missing++; missing < 2 {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		err := c.register(rctx, self)
		cancel()
		if err != nil {
			c.opts.Logger.Warn("herd/nacos: registering self again failed; will retry", "id", self.ID, "err", err)
			continue
		}
		c.reregistrations.Add(1)
		c.opts.Logger.Warn("herd/nacos: self was missing from the service; registered again", "id", self.ID)
		missing = 0
	}
}

// QueryRemoteNodes asks for the service's instances now.
func (c *Coordinator) QueryRemoteNodes(ctx context.Context) ([]cluster.Node, error) {
	if c.ctx.Err() != nil {
		return nil, cluster.ErrClosed
	}
	instances, err := c.query(ctx)
	if err != nil {
		return nil, fmt.Errorf("nacos: querying %s@%s: %w", c.cfg.ServiceName, c.cfg.Group, err)
	}
	return backend.Sorted(c.decode(instances, false), c.selfID()), nil
}

// Watch pushes the member list after every change the server pushes.
func (c *Coordinator) Watch(ctx context.Context) <-chan []cluster.Node {
	return c.life.View.Subscribe(ctx)
}

// Close deregisters self, so peers drop it at once, unsubscribes and closes
// the SDK client. It is safe to call more than once.
func (c *Coordinator) Close() error {
	return c.life.Close(c.closeClient)
}

// closeClient ends the subscription and the SDK's client, which ends every
// call still waiting on it.
func (c *Coordinator) closeClient() error {
	if c.sub != nil {
		_ = c.client.Unsubscribe(c.sub)
	}
	closeClient(c.client)
	return nil
}
