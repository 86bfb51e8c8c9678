package all_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	_ "github.com/herd-go/herd/cluster/all"
)

// closedPort returns a loopback port that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer accepts TCP connections and never answers, like a server
// that hangs; it returns its address.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return l.Addr().String()
}

// nacosAddrFor returns the HTTP host:port whose gRPC port (HTTP + 1000) is
// grpcAddr, the address the SDK dials.
func nacosAddrFor(t *testing.T, grpcAddr string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(grpcAddr)
	p, _ := strconv.Atoi(port)
	if p <= 1001 {
		t.Skipf("port %d leaves no HTTP port below it", p)
	}
	return net.JoinHostPort(host, strconv.Itoa(p-1000))
}

// step is how far a case gets: loading the config, building self, or New.
type step int

const (
	load step = iota
	self
	start
)

// badCase is one mistake a user makes, and what the error must say.
type badCase struct {
	name string
	env  map[string]string // the environment; YAML, if any, comes from doc
	doc  string            // a config file's content; empty means the built-in default
	step step
	ctx  func() context.Context // for start; default: a live context
	// want are substrings the message must hold (the key, the env var, the
	// fix); not are substrings it must not (what the old messages blamed).
	want, not []string
	within    time.Duration // start must fail within this; default 2s
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	kubeAddr := closedPort(t)
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"http://"+kubeAddr+"\"}}]\nusers: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ended := func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	etcdDown, zkDown, consulDown, nacosDown := closedPort(t), closedPort(t), closedPort(t), closedPort(t)
	silent := silentServer(t)
	// A port held by a UDP socket, which the gossip protocol also needs.
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.LocalAddr().(*net.UDPAddr).Port
	silentNacos := nacosAddrFor(t, silentServer(t))
	silentKubeconfig := filepath.Join(dir, "silent-kubeconfig")
	if err := os.WriteFile(silentKubeconfig, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"http://"+silent+"\"}}]\nusers: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shortDeadline := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}

	cases := []badCase{
		// Misspelt keys anywhere under cluster, with the nearest valid one.
		{name: "misspelt selector", doc: "cluster:\n  selecter: etcd\n", step: load,
			want: []string{"config:2:", "unknown key cluster.selecter", "did you mean cluster.selector?"}},
		{name: "nodeID for nodeId", doc: "cluster:\n  selector: standalone\n  nodeID: a\n", step: load,
			want: []string{"config:3:", "cluster.nodeID", "did you mean cluster.nodeId?"}},
		{name: "section etc", doc: "cluster:\n  selector: standalone\n  etc:\n    endpoints: x:1\n", step: load,
			want: []string{"config:3:", "unknown key cluster.etc", "did you mean cluster.etcd?"}},
		{name: "misspelt key of a section not selected", doc: "cluster:\n  selector: standalone\n\n  zookeeper:\n    hostport: a:1\n", step: load,
			want: []string{"config:5:", "cluster.zookeeper.hostport", "did you mean cluster.zookeeper.hostPort?"}},

		// Type errors: key, env var, value, what is accepted; no built-in line.
		{name: "ttl from env not a duration", env: map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_ETCD_TTL": "abc"}, step: start,
			want: []string{"cluster.etcd.ttl", `"abc"`, "from SW_CLUSTER_ETCD_TTL", "a duration with a unit"},
			not:  []string{"line", "!!str", "built-in"}},
		{name: "ttl bare number in file", doc: "cluster:\n  selector: etcd\n  etcd:\n    endpoints: 127.0.0.1:1\n    ttl: 10\n", step: start,
			want: []string{"config:5:", "cluster.etcd.ttl", `"10"`, "a duration with a unit, such as 500ms, 10s"}},
		{name: "bool", env: map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_ETCD_AUTHENTICATION": "maybe"}, step: start,
			want: []string{"cluster.etcd.authentication", "SW_CLUSTER_ETCD_AUTHENTICATION", "true or false"}},
		{name: "sleep time not a number", env: map[string]string{"SW_CLUSTER": "zookeeper", "SW_CLUSTER_ZK_SLEEP_TIME": "abc"}, step: start,
			want: []string{"cluster.zookeeper.baseSleepTimeMs", "SW_CLUSTER_ZK_SLEEP_TIME", "a whole number"}},
		{name: "sleep time negative shows the value", env: map[string]string{"SW_CLUSTER": "zookeeper", "SW_CLUSTER_ZK_SLEEP_TIME": "-5"}, step: start,
			want: []string{"cluster.zookeeper.baseSleepTimeMs", `"-5"`, "SW_CLUSTER_ZK_SLEEP_TIME"}, not: []string{"non-positive"}},

		// The advertised address: blame the setting that is wrong.
		{name: "internalComHost wildcard", env: map[string]string{"SW_CLUSTER_INTERNAL_COM_HOST": "0.0.0.0"}, step: self,
			want: []string{"cluster.standalone.internalComHost", "from SW_CLUSTER_INTERNAL_COM_HOST", "wildcard"}, not: []string{"bind"}},
		{name: "internalComPort out of range", env: map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_INTERNAL_COM_PORT": "70000"}, step: self,
			want: []string{"cluster.etcd.internalComPort", `"70000"`, "SW_CLUSTER_INTERNAL_COM_PORT", "1 to 65535"}, not: []string{"bind address"}},
		{name: "host with spaces", env: map[string]string{"SW_CLUSTER_INTERNAL_COM_HOST": "not a host"}, step: self,
			want: []string{"internalComHost", "SW_CLUSTER_INTERNAL_COM_HOST", "not an IP address or a DNS name"}},
		{name: "host with a scheme", env: map[string]string{"SW_CLUSTER_INTERNAL_COM_HOST": "http://127.0.0.1"}, step: self,
			want: []string{"internalComHost", "SW_CLUSTER_INTERNAL_COM_HOST", "no scheme"}},
		{name: "node ID with a slash", env: map[string]string{"SW_CLUSTER_NODE_ID": "a/b"}, step: self,
			want: []string{"cluster.nodeId", "from SW_CLUSTER_NODE_ID", "letters, digits"}},
		{name: "node ID too long", env: map[string]string{"SW_CLUSTER_NODE_ID": strings.Repeat("a", 254)}, step: self,
			want: []string{"cluster.nodeId", "limit is 253"}},

		// Servers that are not there: at once, saying so.
		{name: "etcd endpoint not a url", env: map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_ETCD_ENDPOINTS": "not a url"}, step: start,
			want: []string{"cluster.etcd.endpoints", "SW_CLUSTER_ETCD_ENDPOINTS", "host:port"}, within: 100 * time.Millisecond},
		{name: "etcd closed port", env: map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_ETCD_ENDPOINTS": etcdDown}, step: start,
			want: []string{"connection refused", etcdDown, "SW_CLUSTER_ETCD_ENDPOINTS"}, within: time.Second},
		{name: "zookeeper closed port", env: map[string]string{"SW_CLUSTER": "zookeeper", "SW_CLUSTER_ZK_HOST_PORT": zkDown}, step: start,
			want: []string{"connection refused", zkDown, "SW_CLUSTER_ZK_HOST_PORT"}, within: time.Second},
		{name: "consul closed port", env: map[string]string{"SW_CLUSTER": "consul", "SW_CLUSTER_CONSUL_HOST_PORT": consulDown}, step: start,
			want: []string{"connection refused", consulDown, "SW_CLUSTER_CONSUL_HOST_PORT"}, within: time.Second},
		{name: "nacos closed port", env: map[string]string{"SW_CLUSTER": "nacos", "SW_CLUSTER_NACOS_HOST_PORT": nacosDown}, step: start,
			want: []string{"connection refused", nacosDown, "SW_CLUSTER_NACOS_HOST_PORT"}, within: time.Second},
		{name: "kubernetes closed port", env: map[string]string{"SW_CLUSTER": "kubernetes", "SW_CLUSTER_K8S_KUBECONFIG": kubeconfig}, step: start,
			want: []string{"connection refused", kubeAddr, "kubeconfig"}, within: time.Second},

		// gossip: every setting says what it accepts; a taken port says which.
		{name: "gossip seed without port", env: map[string]string{"SW_CLUSTER": "gossip", "SW_CLUSTER_GOSSIP_SEEDS": "10.0.0.1"}, step: start,
			want: []string{"cluster.gossip.seeds", "SW_CLUSTER_GOSSIP_SEEDS", "host:port"}},
		{name: "gossip unknown profile", env: map[string]string{"SW_CLUSTER": "gossip", "SW_CLUSTER_GOSSIP_PROFILE": "fast"}, step: start,
			want: []string{"cluster.gossip.profile", `"fast"`, "lan, wan or local"}},
		{name: "gossip key not base64 hides the key", env: map[string]string{"SW_CLUSTER": "gossip", "SW_CLUSTER_GOSSIP_KEYS": "secret-not-base64"}, step: start,
			want: []string{"cluster.gossip.keys", "base64", "AES key"}, not: []string{"secret-not-base64"}},
		{name: "gossip key of a wrong length", env: map[string]string{"SW_CLUSTER": "gossip", "SW_CLUSTER_GOSSIP_KEYS": "c2hvcnQ="}, step: start,
			want: []string{"cluster.gossip.keys", "16, 24 or 32"}},
		{name: "gossip key file missing", env: map[string]string{"SW_CLUSTER": "gossip", "SW_CLUSTER_GOSSIP_KEY_FILE": "/nonexistent/keys"}, step: start,
			want: []string{"cluster.gossip.keyFile", "/nonexistent/keys", "SW_CLUSTER_GOSSIP_KEY_FILE"}},
		{name: "gossip empty cluster name", env: map[string]string{"SW_CLUSTER": "gossip", "SW_CLUSTER_GOSSIP_CLUSTER_NAME": ""}, step: start,
			want: []string{"cluster.gossip.clusterName", "SW_CLUSTER_GOSSIP_CLUSTER_NAME"}},
		{name: "gossip bind address not an IP", env: map[string]string{"SW_CLUSTER": "gossip", "SW_CLUSTER_GOSSIP_BIND_ADDR": "localhost"}, step: start,
			want: []string{"cluster.gossip.bindAddr", `"localhost"`, "an IP address"}},
		{name: "gossip port taken", env: map[string]string{"SW_CLUSTER": "gossip", "SW_CLUSTER_GOSSIP_BIND_ADDR": "127.0.0.1", "SW_CLUSTER_GOSSIP_BIND_PORT": strconv.Itoa(takenPort)}, step: start,
			want: []string{"gossip: listening on 127.0.0.1:" + strconv.Itoa(takenPort), "SW_CLUSTER_GOSSIP_BIND_PORT"}, within: time.Second},

		// A context that has already ended is said to have ended.
		{name: "etcd ended context", env: map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_ETCD_ENDPOINTS": etcdDown}, step: start, ctx: ended,
			want: []string{"context"}, not: []string{"did not answer within", "refused"}, within: 100 * time.Millisecond},
		{name: "zookeeper ended context", env: map[string]string{"SW_CLUSTER": "zookeeper"}, step: start, ctx: ended,
			want: []string{"context"}, not: []string{"within"}, within: 100 * time.Millisecond},
		{name: "consul ended context", env: map[string]string{"SW_CLUSTER": "consul"}, step: start, ctx: ended,
			want: []string{"context"}, not: []string{"within"}, within: 100 * time.Millisecond},
		{name: "nacos ended context", env: map[string]string{"SW_CLUSTER": "nacos"}, step: start, ctx: ended,
			want: []string{"context"}, not: []string{"within"}, within: 100 * time.Millisecond},
		{name: "kubernetes ended context", env: map[string]string{"SW_CLUSTER": "kubernetes", "SW_CLUSTER_K8S_KUBECONFIG": kubeconfig}, step: start, ctx: ended,
			want: []string{"context"}, not: []string{"within"}, within: 100 * time.Millisecond},

		// A deadline that passes while the server stays silent is the
		// context's doing, not a wrong address.
		{name: "etcd deadline while connecting", env: map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_ETCD_ENDPOINTS": silent}, step: start, ctx: shortDeadline,
			want: []string{"context ended before", "deadline exceeded", "SW_CLUSTER_ETCD_ENDPOINTS"}, not: []string{"did not answer within"}, within: time.Second},
		{name: "zookeeper deadline while connecting", env: map[string]string{"SW_CLUSTER": "zookeeper", "SW_CLUSTER_ZK_HOST_PORT": silent}, step: start, ctx: shortDeadline,
			want: []string{"context ended before", "deadline exceeded", "SW_CLUSTER_ZK_HOST_PORT"}, not: []string{"no session within"}, within: time.Second},
		{name: "consul deadline while connecting", env: map[string]string{"SW_CLUSTER": "consul", "SW_CLUSTER_CONSUL_HOST_PORT": silent}, step: start, ctx: shortDeadline,
			want: []string{"context ended before", "deadline exceeded", "SW_CLUSTER_CONSUL_HOST_PORT"}, not: []string{"answered within"}, within: time.Second},
		{name: "nacos deadline while connecting", env: map[string]string{"SW_CLUSTER": "nacos", "SW_CLUSTER_NACOS_HOST_PORT": silentNacos}, step: start, ctx: shortDeadline,
			want: []string{"context ended before", "deadline exceeded", "SW_CLUSTER_NACOS_HOST_PORT"}, within: time.Second},
		{name: "kubernetes deadline while connecting", env: map[string]string{"SW_CLUSTER": "kubernetes", "SW_CLUSTER_K8S_KUBECONFIG": silentKubeconfig}, step: start, ctx: shortDeadline,
			want: []string{"context ended before", "deadline exceeded", "SW_CLUSTER_K8S_KUBECONFIG"}, not: []string{"did not answer within"}, within: time.Second},

		// A server that hangs: start-up gives up at the configured timeout.
		{name: "etcd silent server", env: map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_ETCD_ENDPOINTS": silent, "SW_CLUSTER_ETCD_DIAL_TIMEOUT": "500ms"}, step: start,
			want: []string{"did not answer within 500ms", "cluster.etcd.dialTimeout", "SW_CLUSTER_ETCD_ENDPOINTS"}, within: 1500 * time.Millisecond},
		{name: "zookeeper silent server", env: map[string]string{"SW_CLUSTER": "zookeeper", "SW_CLUSTER_ZK_HOST_PORT": silent, "SW_CLUSTER_ZK_CONNECT_TIMEOUT": "500ms"}, step: start,
			want: []string{"no session within 500ms", "cluster.zookeeper.connectTimeout", "SW_CLUSTER_ZK_HOST_PORT"}, within: 1500 * time.Millisecond},
		{name: "consul silent server", env: map[string]string{"SW_CLUSTER": "consul", "SW_CLUSTER_CONSUL_HOST_PORT": silent, "SW_CLUSTER_CONSUL_TIMEOUT": "500ms"}, step: start,
			want: []string{"answered within 500ms", "SW_CLUSTER_CONSUL_HOST_PORT"}, within: 1500 * time.Millisecond},
		{name: "nacos silent server", env: map[string]string{"SW_CLUSTER": "nacos", "SW_CLUSTER_NACOS_HOST_PORT": silentNacos, "SW_CLUSTER_NACOS_TIMEOUT": "500ms"}, step: start,
			want: []string{"no answer within 500ms", "cluster.nacos.timeout", "SW_CLUSTER_NACOS_HOST_PORT"}, within: 1500 * time.Millisecond},
		{name: "kubernetes silent server", env: map[string]string{"SW_CLUSTER": "kubernetes", "SW_CLUSTER_K8S_KUBECONFIG": silentKubeconfig, "SW_CLUSTER_K8S_TIMEOUT": "500ms"}, step: start,
			want: []string{"did not answer within 500ms", "kubeconfig"}, within: 1500 * time.Millisecond},

		// A backend name that is not one.
		{name: "unknown backend", env: map[string]string{"SW_CLUSTER": "zookeepr"}, step: start,
			want: []string{"cluster.selector", `"zookeepr"`, "SW_CLUSTER", "zookeeper"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := attempt(t, c)
			if err == nil {
				t.Fatalf("accepted; want an error mentioning %q", c.want)
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the message does not mention %q:\n%s", w, msg)
				}
			}
			for _, n := range c.not {
				if strings.Contains(msg, n) {
					t.Errorf("the message mentions %q, which is not the problem:\n%s", n, msg)
				}
			}
			if c.step != start {
				var ce *cluster.ConfigError
				if !errors.As(err, &ce) {
					t.Errorf("%T is not a *cluster.ConfigError", err)
				}
			}
		})
	}
}

func attempt(t *testing.T, c badCase) error {
	t.Helper()
	lookup := cluster.WithLookupEnv(func(name string) (string, bool) { v, ok := c.env[name]; return v, ok })
	var cfg *cluster.Config
	var err error
	if c.doc != "" {
		cfg, err = cluster.LoadConfig([]byte(c.doc), lookup)
	} else {
		cfg, err = cluster.DefaultConfig(lookup)
	}
	if err != nil || c.step == load {
		if c.step != load && err != nil {
			t.Fatalf("load failed, but this case is about a later step: %v", err)
		}
		return err
	}
	if _, err := cfg.SelfNode("127.0.0.1:11800"); err != nil || c.step == self {
		return err
	}
	ctx := context.Background()
	if c.ctx != nil {
		ctx = c.ctx()
	}
	within := c.within
	if within == 0 {
		within = 2 * time.Second
	}
	begin := time.Now()
	coord, err := cluster.New(ctx, cfg)
	if took := time.Since(begin); took > within {
		t.Errorf("cluster.New took %s to fail; want at most %s", took.Round(time.Millisecond), within)
	}
	if err == nil {
		coord.Close()
	}
	return err
}

// TestConfigFileLines: errors in a file name the file and the line.
func TestConfigFileLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "application.yml")
	doc := "core:\n  default: {}\ncluster:\n  selector: etcd\n  etcd:\n    endpoints: 127.0.0.1:2379\n    ttll: 5s\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := cluster.LoadConfigFile(path)
	var ce *cluster.ConfigError
	if !errors.As(err, &ce) || ce.File != path || ce.Line != 7 || !strings.Contains(err.Error(), path+":7:") || !strings.Contains(err.Error(), "did you mean cluster.etcd.ttl?") {
		t.Fatalf("err = %v; want %s:7 and a suggestion", err, path)
	}
}

// TestDurationsAsDocumented: what the README says durations accept.
func TestDurationsAsDocumented(t *testing.T) {
	for value, ok := range map[string]bool{"500ms": true, "10s": true, "1m30s": true, "0": true, "2h": true, "10": false, "ten seconds": false, "-": false} {
		env := map[string]string{"SW_CLUSTER": "kubernetes", "SW_CLUSTER_K8S_RESYNC": value, "SW_CLUSTER_K8S_KUBECONFIG": "/nonexistent"}
		cfg, err := cluster.DefaultConfig(cluster.WithLookupEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok }))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cluster.New(t.Context(), cfg) // fails either way: the kubeconfig does not exist
		if blamed := err != nil && strings.Contains(err.Error(), "cluster.kubernetes.resync"); blamed == ok {
			t.Errorf("resync %q: err = %v; want it accepted: %v", value, err, ok)
		}
	}
}

// TestCheckRefusesWhatNewRefuses: cluster.Check finds, on every backend and
// without connecting, the values that New would refuse at start; a good
// configuration passes at once, though nothing listens where it points.
func TestCheckRefusesWhatNewRefuses(t *testing.T) {
	nowhere := closedPort(t)
	for _, tc := range []struct {
		backend string
		good    map[string]string
		bad     map[string]string
		key     string
	}{
		{"etcd", map[string]string{"SW_CLUSTER_ETCD_ENDPOINTS": nowhere}, map[string]string{"SW_CLUSTER_ETCD_TTL": "1s"}, "cluster.etcd.ttl"},
		{"consul", map[string]string{"SW_CLUSTER_CONSUL_HOST_PORT": nowhere}, map[string]string{"SW_CLUSTER_CONSUL_HOST_PORT": "no-port"}, "cluster.consul.hostPort"},
		{"zookeeper", map[string]string{"SW_CLUSTER_ZK_HOST_PORT": nowhere}, map[string]string{"SW_CLUSTER_ZK_HOST_PORT": ""}, "cluster.zookeeper.hostPort"},
		{"nacos", map[string]string{"SW_CLUSTER_NACOS_HOST_PORT": nowhere}, map[string]string{"SW_CLUSTER_NACOS_HOST_PORT": "no-port"}, "cluster.nacos.hostPort"},
		{"gossip", map[string]string{"SW_CLUSTER_GOSSIP_SEEDS": nowhere}, map[string]string{"SW_CLUSTER_GOSSIP_PROFILE": "moon"}, "cluster.gossip.profile"},
		{"standalone", nil, map[string]string{"SW_CLUSTER_INTERNAL_COM_PORT": "abc"}, "internalComPort"},
		// Files are read too: a CA, a kubeconfig that is not there.
		{"etcd", map[string]string{"SW_CLUSTER_ETCD_ENDPOINTS": nowhere}, map[string]string{"SW_CLUSTER_ETCD_TLS_CA_FILE": "/nope/ca.pem"}, "cluster.etcd.tlsCaFile"},
		{"consul", map[string]string{"SW_CLUSTER_CONSUL_HOST_PORT": nowhere}, map[string]string{"SW_CLUSTER_CONSUL_TLS_CA_FILE": "/nope/ca.pem"}, "/nope/ca.pem"},
		{"kubernetes", nil, map[string]string{"SW_CLUSTER_K8S_KUBECONFIG": "/nope/kubeconfig"}, "cluster.kubernetes.kubeconfig"},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			load := func(env map[string]string) *cluster.Config {
				t.Helper()
				cfg, err := cluster.DefaultConfig(cluster.WithLookupEnv(func(k string) (string, bool) {
					if k == "SW_CLUSTER" {
						return tc.backend, true
					}
					v, ok := env[k]
					return v, ok
				}))
				if err != nil {
					t.Fatal(err)
				}
				return cfg
			}
			began := time.Now()
			// kubernetes has no good configuration here: outside a pod,
			// with no kubeconfig, it would not start.
			if tc.backend != "kubernetes" {
				if err := cluster.Check(load(tc.good)); err != nil {
					t.Errorf("a good configuration: %v", err)
				}
			}
			if took := time.Since(began); took > time.Second {
				t.Errorf("Check took %s: it should not connect", took)
			}
			err := cluster.Check(load(tc.bad))
			var ce *cluster.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("%v: %v, want a *cluster.ConfigError naming %s", tc.bad, err, tc.key)
			}
		})
	}
}

// TestBackendsConfigErrorsNameTheVariable: a value a backend refuses when
// it starts is reported with the environment variable that set it, as a
// value refused while decoding is.
func TestBackendsConfigErrorsNameTheVariable(t *testing.T) {
	cfg, err := cluster.DefaultConfig(cluster.WithLookupEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_ETCD_TLS_CA_FILE": "/nope/ca.pem"}[k]
		return v, ok
	}))
	if err != nil {
		t.Fatal(err)
	}
	err = cluster.Check(cfg)
	if err == nil || !strings.Contains(err.Error(), "cluster.etcd.tlsCaFile") || !strings.Contains(err.Error(), "(from SW_CLUSTER_ETCD_TLS_CA_FILE)") {
		t.Fatalf("a missing CA file: %v, want the key and the variable named", err)
	}
}
