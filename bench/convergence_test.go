package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	consulapi "github.com/hashicorp/consul/api"
	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/herd-go/herd/cluster"
	_ "github.com/herd-go/herd/cluster/all"
	"github.com/herd-go/herd/internal/embedetcd"
	"github.com/herd-go/herd/remote"
)

// tracker records, for the node that is joining now, when each observer
// first saw it: herd's Managers and the bare SDK watchers alike.
type tracker struct {
	mu    sync.Mutex
	id    string
	start time.Time
	seen  map[string]map[int]time.Duration // kind → observer → latency
	done  chan struct{}
	want  int // observers of each kind
}

func (tr *tracker) begin(id string, want int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.id, tr.start, tr.want = id, time.Now(), want
	tr.seen = map[string]map[int]time.Duration{"herd": {}, "bare": {}}
	tr.done = make(chan struct{})
}

// report is an observer's news: has says whether what it saw has the ID.
func (tr *tracker) report(kind string, observer int, has func(id string) bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.seen == nil || tr.id == "" {
		return
	}
	if _, ok := tr.seen[kind][observer]; ok || !has(tr.id) {
		return
	}
	tr.seen[kind][observer] = time.Since(tr.start)
	if len(tr.seen["herd"]) == tr.want && len(tr.seen["bare"]) == tr.want {
		close(tr.done)
	}
}

// wait returns the time until the last observer of each kind saw the join.
func (tr *tracker) wait(t *testing.T) (herd, bare time.Duration) {
	tr.mu.Lock()
	done := tr.done
	tr.mu.Unlock()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		tr.mu.Lock()
		defer tr.mu.Unlock()
		t.Fatalf("within 30s %d herd and %d bare observers of %d each saw %s", len(tr.seen["herd"]), len(tr.seen["bare"]), tr.want, tr.id)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, d := range tr.seen["herd"] {
		herd = max(herd, d)
	}
	for _, d := range tr.seen["bare"] {
		bare = max(bare, d)
	}
	return herd, bare
}

func contains(text string) func(string) bool {
	return func(id string) bool { return strings.Contains(text, id) }
}

// backendCase is one backend: herd's configuration for it, and a bare
// watcher written with the SDK herd uses, watching the same entries.
type backendCase struct {
	name string
	env  map[string]string
	bare func(ctx context.Context, t *testing.T, coord cluster.Coordinator, env map[string]string, report func(has func(string) bool))
}

// TestConvergence: a node joins; how long until all 5 herd Managers (each
// on its own coordinator) list it, and all 5 bare SDK watchers see its
// entry. Both kinds watch the same joins in the same run.
func TestConvergence(t *testing.T) {
	const observers = 5
	joins := envInt("HERD_BENCH_JOINS", 30)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	etcdServer, err := embedetcd.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer etcdServer.Close()
	cases := []backendCase{
		{name: "etcd", env: map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_ETCD_ENDPOINTS": etcdServer.Endpoint(), "SW_CLUSTER_ETCD_SERVICE_NAME": "bench-" + suffix}, bare: bareEtcd},
		{name: "zookeeper", env: map[string]string{"SW_CLUSTER": "zookeeper", "SW_CLUSTER_ZK_HOST_PORT": os.Getenv("HERD_TEST_ZK_ADDR"), "SW_CLUSTER_ZK_ROOT": "/bench-" + suffix}, bare: bareZooKeeper},
		{name: "consul", env: map[string]string{"SW_CLUSTER": "consul", "SW_CLUSTER_CONSUL_HOST_PORT": os.Getenv("HERD_TEST_CONSUL_ADDR"), "SW_SERVICE_NAME": "bench-" + suffix}, bare: bareConsul},
		{name: "nacos", env: map[string]string{"SW_CLUSTER": "nacos", "SW_CLUSTER_NACOS_HOST_PORT": os.Getenv("HERD_TEST_NACOS_ADDR"), "SW_SERVICE_NAME": "bench-" + suffix}, bare: bareNacos},
	}
	tb := newTable(fmt.Sprintf("Convergence: a join seen by all %d observers of each kind (%d joins per backend)", observers, joins),
		"backend", "herd p50", "bare p50", "p50 ratio", "herd p99", "bare p99", "p99 ratio")
	for _, bc := range cases {
		if addr := bc.env["SW_CLUSTER_ZK_HOST_PORT"] + bc.env["SW_CLUSTER_CONSUL_HOST_PORT"] + bc.env["SW_CLUSTER_NACOS_HOST_PORT"]; bc.name != "etcd" && addr == "" {
			tb.add(bc.name, "not run: its server's address is not set (scripts/bench.sh starts it)", "", "", "", "", "")
			continue
		}
		herd, bare := converge(t, bc, observers, joins)
		h50, b50, h99, b99 := quantile(herd, .5), quantile(bare, .5), quantile(herd, .99), quantile(bare, .99)
		tb.add(bc.name, dur(h50), dur(b50), ratio(float64(h50), float64(b50)), dur(h99), dur(b99), ratio(float64(h99), float64(b99)))
	}
	tb.print()
}

func converge(t *testing.T, bc backendCase, observers, joins int) (herd, bare []time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg, err := cluster.LoadConfig(nil, cluster.WithLookupEnv(func(k string) (string, bool) { v, ok := bc.env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	open := func(i int) cluster.Coordinator {
		c, err := cluster.New(ctx, cfg, cluster.WithLogger(quiet))
		if err != nil {
			t.Fatalf("%s: %v", bc.name, err)
		}
		self := cluster.Node{ID: fmt.Sprintf("n%d-%d", i, time.Now().UnixNano()), Address: cluster.Address{Host: "127.0.0.1", Port: 21000 + i}}
		if err := c.RegisterRemote(ctx, self); err != nil {
			t.Fatal(err)
		}
		return c
	}
	tr := &tracker{}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range observers {
		c := open(i)
		defer c.Close()
		m, err := remote.NewManager(c, cluster.Node{ID: fmt.Sprintf("observer-%d", i), Address: cluster.Address{Host: "127.0.0.1", Port: 22000 + i}}, remote.NewServer(),
			remote.WithLogger(quiet), remote.WithErrorHandler(func(error) {}))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		views := m.Subscribe(ctx)
		wg.Go(func() {
			for s := range views {
				tr.report("herd", i, func(id string) bool { return has(s, id) })
			}
		})
		wg.Go(func() { bc.bare(ctx, t, c, bc.env, func(h func(string) bool) { tr.report("bare", i, h) }) })
	}
	time.Sleep(time.Second) // every watcher is up
	for j := range joins {
		c, err := cluster.New(ctx, cfg, cluster.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("joiner-%d-%d", j, time.Now().UnixNano())
		tr.begin(id, observers)
		if err := c.RegisterRemote(ctx, cluster.Node{ID: id, Address: cluster.Address{Host: "127.0.0.1", Port: 23000 + j}}); err != nil {
			t.Fatal(err)
		}
		h, b := tr.wait(t)
		herd, bare = append(herd, h), append(bare, b)
		_ = c.Close()
		time.Sleep(200 * time.Millisecond)
	}
	return herd, bare
}

// bareEtcd watches herd's key prefix and reports each value written.
func bareEtcd(ctx context.Context, t *testing.T, coord cluster.Coordinator, env map[string]string, report func(func(string) bool)) {
	prefix := coord.(interface{ Prefix() string }).Prefix()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{env["SW_CLUSTER_ETCD_ENDPOINTS"]}, Logger: zap.NewNop()})
	if err != nil {
		t.Error(err)
		return
	}
	defer cli.Close()
	for resp := range cli.Watch(ctx, prefix, clientv3.WithPrefix()) {
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypePut {
				report(contains(string(ev.Kv.Value)))
			}
		}
	}
}

// bareZooKeeper watches the children of herd's path and reads each new
// child's data, as a plain go-zookeeper client would.
func bareZooKeeper(ctx context.Context, t *testing.T, coord cluster.Coordinator, env map[string]string, report func(func(string) bool)) {
	path := coord.(interface{ Path() string }).Path()
	conn, _, err := zk.Connect([]string{env["SW_CLUSTER_ZK_HOST_PORT"]}, 4*time.Second, zk.WithLogInfo(false), zk.WithLogger(zkQuiet{}))
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	known := map[string]bool{}
	for ctx.Err() == nil {
		children, _, ch, err := conn.ChildrenW(path)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for _, c := range children {
			if known[c] {
				continue
			}
			known[c] = true
			data, _, err := conn.Get(path + "/" + c)
			if err == nil {
				report(contains(string(data)))
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
}

type zkQuiet struct{}

func (zkQuiet) Printf(string, ...any) {}

// bareConsul runs blocking queries on the service's passing instances.
func bareConsul(ctx context.Context, t *testing.T, coord cluster.Coordinator, env map[string]string, report func(func(string) bool)) {
	client, err := consulapi.NewClient(&consulapi.Config{Address: env["SW_CLUSTER_CONSUL_HOST_PORT"]})
	if err != nil {
		t.Error(err)
		return
	}
	name := env["SW_SERVICE_NAME"]
	var index uint64
	for ctx.Err() == nil {
		entries, meta, err := client.Health().Service(name, "", true, (&consulapi.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second}).WithContext(ctx))
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		index = meta.LastIndex
		var b strings.Builder
		for _, e := range entries {
			fmt.Fprintf(&b, "%s %v\n", e.Service.ID, e.Service.Meta)
		}
		report(contains(b.String()))
	}
}

// bareNacos subscribes to the service with the SDK's push callback.
func bareNacos(ctx context.Context, t *testing.T, coord cluster.Coordinator, env map[string]string, report func(func(string) bool)) {
	addr, err := cluster.ParseAddress(env["SW_CLUSTER_NACOS_HOST_PORT"])
	if err != nil {
		t.Error(err)
		return
	}
	dir := filepath.Join(t.TempDir(), "nacos")
	cc := constant.NewClientConfig(constant.WithNotLoadCacheAtStart(true), constant.WithLogDir(dir), constant.WithCacheDir(dir), constant.WithLogLevel("error"))
	client, err := clients.NewNamingClient(vo.NacosClientParam{ClientConfig: cc,
		ServerConfigs: []constant.ServerConfig{*constant.NewServerConfig(addr.Host, uint64(addr.Port))}})
	if err != nil {
		t.Error(err)
		return
	}
	defer client.CloseClient()
	name := env["SW_SERVICE_NAME"]
	err = client.Subscribe(&vo.SubscribeParam{ServiceName: name, GroupName: "DEFAULT_GROUP", SubscribeCallback: func(instances []model.Instance, err error) {
		var b strings.Builder
		for _, in := range instances {
			fmt.Fprintf(&b, "%s %v\n", in.InstanceId, in.Metadata)
		}
		report(contains(b.String()))
	}})
	if err != nil {
		t.Error(err)
		return
	}
	<-ctx.Done()
}
