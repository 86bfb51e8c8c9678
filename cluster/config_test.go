package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

func env(kv ...string) cluster.Option {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return cluster.WithLookupEnv(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

// kvYAML is the section of "kv", a backend of the tests' own declared the
// way herd's backends declare theirs.
const kvYAML = `# comma-separated host:port list
endpoints: ${SW_CLUSTER_KV_ENDPOINTS:localhost:2379}
ttl: ${SW_CLUSTER_KV_TTL:10s}
`

type kvConfig struct {
	Endpoints string        `yaml:"endpoints"`
	TTL       time.Duration `yaml:"ttl"`
}

func init() {
	cluster.RegisterSection("kv", []byte(kvYAML), kvConfig{Endpoints: "localhost:2379", TTL: 10 * time.Second})
	cluster.RegisterProvider("kv", func(_ context.Context, s cluster.Section, _ ...cluster.Option) (cluster.Coordinator, error) {
		var c kvConfig
		if err := s.Decode(&c); err != nil {
			return nil, err
		}
		return cluster.NewStandalone(), nil
	})
}

// A backend of the tests' own, so that its section (cluster.test) is known.
func init() {
	cluster.RegisterProvider("test", func(context.Context, cluster.Section, ...cluster.Option) (cluster.Coordinator, error) {
		return cluster.NewStandalone(), nil
	})
}

type testSection struct {
	Str     string        `yaml:"str"`
	Empty   string        `yaml:"empty"`
	Num     int           `yaml:"num"`
	Flag    bool          `yaml:"flag"`
	Addr    string        `yaml:"addr"`
	Mixed   string        `yaml:"mixed"`
	Wait    time.Duration `yaml:"wait"`
	Literal string        `yaml:"literal"`
}

func TestSubstitution(t *testing.T) {
	doc := `
cluster:
  selector: ${SW_CLUSTER:test}
  test:
    str: ${S:"Quoted Default"}
    empty: ${E:""}
    num: ${N:-1}
    flag: ${F:false}
    addr: ${A:localhost:2379}
    mixed: http://${H:localhost}:${P:80}/x
    wait: ${W:5s}
    literal: "no placeholders: here"
`
	cases := []struct {
		name string
		env  []string
		want testSection
	}{
		{"defaults", nil, testSection{Str: "Quoted Default", Num: -1, Addr: "localhost:2379", Mixed: "http://localhost:80/x", Wait: 5 * time.Second, Literal: "no placeholders: here"}},
		{"env wins", []string{"S", "from env", "E", "set", "N", "7", "F", "true", "A", "10.0.0.1:2379,10.0.0.2:2379", "H", "h", "P", "9", "W", "250ms"},
			testSection{Str: "from env", Empty: "set", Num: 7, Flag: true, Addr: "10.0.0.1:2379,10.0.0.2:2379", Mixed: "http://h:9/x", Wait: 250 * time.Millisecond, Literal: "no placeholders: here"}},
		{"env set to empty", []string{"S", "", "A", ""}, testSection{Num: -1, Mixed: "http://localhost:80/x", Wait: 5 * time.Second, Literal: "no placeholders: here"}},
		{"env value that looks like a mapping stays a string", []string{"S", "a: b"}, testSection{Str: "a: b", Num: -1, Addr: "localhost:2379", Mixed: "http://localhost:80/x", Wait: 5 * time.Second, Literal: "no placeholders: here"}},
		{"numeric env into string", []string{"S", "123"}, testSection{Str: "123", Num: -1, Addr: "localhost:2379", Mixed: "http://localhost:80/x", Wait: 5 * time.Second, Literal: "no placeholders: here"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := cluster.LoadConfig([]byte(doc), env(c.env...))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Backend != "test" {
				t.Fatalf("selector = %q", cfg.Backend)
			}
			sec := cfg.Section("test")
			var got testSection
			if err := sec.Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestDefaultConfigFromEnvAlone(t *testing.T) {
	cfg, err := cluster.DefaultConfig(env("SW_CLUSTER", "kv", "SW_CLUSTER_KV_ENDPOINTS", "127.0.0.1:1,127.0.0.1:2", "SW_CLUSTER_NODE_ID", "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Backend != "kv" || cfg.NodeID != "n1" {
		t.Fatalf("selector=%q nodeID=%q", cfg.Backend, cfg.NodeID)
	}
	sec := cfg.Section("kv")
	var full kvConfig
	if err := sec.Decode(&full); err != nil || full.Endpoints != "127.0.0.1:1,127.0.0.1:2" {
		t.Fatalf("kv section %+v, %v", full, err)
	}
	var c struct {
		Endpoints string `yaml:"endpoints"`
	}
	// Decoding only one field must fail strictly: the default has more keys.
	if err := sec.Decode(&c); err == nil {
		t.Fatal("strict decode accepted unknown keys")
	}
	def, err := cluster.DefaultConfig(env())
	if err != nil || def.Backend != "standalone" || def.NodeID != "" {
		t.Fatalf("plain default: %+v, %v", def, err)
	}
}

func TestFileFallsBackToDefaultSections(t *testing.T) {
	cfg, err := cluster.LoadConfig([]byte("core:\n  x: 1\ncluster:\n  selector: kv\n"), env())
	if err != nil {
		t.Fatal(err)
	}
	var kv struct {
		Endpoints string `yaml:"endpoints"`
	}
	if err := cfg.Section("kv").Decode(&kv); err == nil || !strings.Contains(err.Error(), "unknown key cluster.kv.ttl") {
		t.Fatalf("kv section not taken from the default: %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"not yaml", "cluster: [", "not valid YAML"},
		{"no cluster", "core: {}", "no cluster section"},
		{"unterminated", "cluster:\n  selector: ${SW_CLUSTER:etcd\n", "cluster.selector"},
		{"empty name", "cluster:\n  selector: ${:etcd}\n", "empty variable name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := cluster.LoadConfig([]byte(c.doc), env())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestUnknownSelectorListsProviders(t *testing.T) {
	cfg, err := cluster.LoadConfig([]byte("cluster:\n  selector: zookeepr\n"), env())
	if err != nil {
		t.Fatal(err)
	}
	_, err = cluster.New(t.Context(), cfg)
	var ce *cluster.ConfigError
	if !errors.As(err, &ce) || ce.Key != "cluster.selector" || ce.Value != "zookeepr" || !strings.Contains(ce.Accepted, "registered backends") {
		t.Fatalf("err = %v", err)
	}
}

func TestSelfNode(t *testing.T) {
	cases := []struct {
		name, bind string
		env        []string
		want       string // address, or error substring prefixed with "!"
	}{
		{"bind address used", "10.1.2.3:11800", nil, "10.1.2.3:11800"},
		{"host override", "0.0.0.0:11800", []string{"SW_CLUSTER_INTERNAL_COM_HOST", "node-a.svc"}, "node-a.svc:11800"},
		{"port override", "10.1.2.3:11800", []string{"SW_CLUSTER_INTERNAL_COM_PORT", "12000"}, "10.1.2.3:12000"},
		{"wildcard v4 refused", "0.0.0.0:11800", nil, "!cluster.kv.internalComHost"},
		{"wildcard v6 refused", "[::]:11800", nil, "!SW_CLUSTER_INTERNAL_COM_HOST"},
		{"empty host refused", ":11800", nil, "!internalComHost"},
		{"no port", "10.1.2.3:0", nil, "!internalComPort"},
		{"bad port override", "10.1.2.3:1", []string{"SW_CLUSTER_INTERNAL_COM_PORT", "-5"}, "!internalComPort"},
		{"garbage bind", "nonsense", nil, "!bind address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := cluster.DefaultConfig(env(append([]string{"SW_CLUSTER", "kv"}, c.env...)...))
			if err != nil {
				t.Fatal(err)
			}
			n, err := cfg.SelfNode(c.bind)
			if strings.HasPrefix(c.want, "!") {
				if err == nil || !strings.Contains(err.Error(), c.want[1:]) {
					t.Fatalf("err = %v, want it to mention %q", err, c.want[1:])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Address.String() != c.want || n.ID == "" {
				t.Fatalf("node = %+v, want address %s and an ID", n, c.want)
			}
		})
	}
	cfg, _ := cluster.DefaultConfig(env("SW_CLUSTER_NODE_ID", "fixed"))
	a, _ := cfg.SelfNode("127.0.0.1:1")
	b, _ := cfg.SelfNode("127.0.0.1:1")
	if a.ID != "fixed" || b.ID != "fixed" {
		t.Fatalf("configured ID not used: %q %q", a.ID, b.ID)
	}
}

// captured holds the options the "capture" backend was built with.
var captured cluster.Options

func init() {
	cluster.RegisterProvider("capture", func(_ context.Context, _ cluster.Section, opts ...cluster.Option) (cluster.Coordinator, error) {
		captured = backend.NewOptions(opts...)
		return cluster.NewStandalone(), nil
	})
}

// New hands the backend the lookup the config was loaded with (so the
// kubernetes backend reads its pod variables the same way) and the caller's
// shared options.
func TestNewPassesOptions(t *testing.T) {
	cfg, err := cluster.LoadConfig([]byte("cluster:\n  selector: capture\n"), env("POD_UID", "uid-1"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	c, err := cluster.New(t.Context(), cfg, cluster.WithLogger(logger), cluster.WithBackoff(cluster.Backoff{Max: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, _ := captured.LookupEnv("POD_UID"); v != "uid-1" {
		t.Errorf("backend reads POD_UID as %q, want the config's lookup (uid-1)", v)
	}
	if captured.Logger != logger || captured.Backoff.Max != time.Second {
		t.Errorf("options not passed: %+v", captured)
	}
}

// A herd backend that is not imported is named, with the import to add.
func TestSelectedBackendNotImported(t *testing.T) {
	cfg, err := cluster.DefaultConfig(env("SW_CLUSTER", "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cluster.New(t.Context(), cfg)
	for _, want := range []string{`"etcd"`, "SW_CLUSTER", `_ "github.com/herd-go/herd/cluster/etcd"`, "cluster/all"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v; want it to mention %s", err, want)
		}
	}
}

func TestNodeIDRules(t *testing.T) {
	for id, ok := range map[string]bool{"node-1": true, "a.b_c-d": true, "0abc": true, "": false, "a/b": false, "-a": false, ".a": false, "a b": false, "ü": false, strings.Repeat("x", 253): true, strings.Repeat("x", 254): false} {
		if err := cluster.CheckID(id); (err == nil) != ok {
			t.Errorf("CheckID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func TestHostRules(t *testing.T) {
	for host, ok := range map[string]bool{"10.0.0.1": true, "::1": true, "fe80::1%eth0": true, "node-a.svc.cluster.local": true, "node_a": true, "host.": true,
		"": false, "0.0.0.0": false, "::": false, "not a host": false, "http://127.0.0.1": false, "a/b": false, "-a": false, "a..b": false, "h:80": false} {
		if err := cluster.CheckHost(host); (err == nil) != ok {
			t.Errorf("CheckHost(%q) = %v, want ok=%v", host, err, ok)
		}
	}
}

// A section written as a single value, not a mapping, is an error that says so.
func TestSectionMustBeAMapping(t *testing.T) {
	cfg, err := cluster.LoadConfig([]byte("cluster:\n  selector: test\n  test: hello\n"), env())
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Str string `yaml:"str"`
	}
	err = cfg.Section("test").Decode(&v)
	if err == nil || !strings.Contains(err.Error(), "a mapping of the test backend's settings") || !strings.Contains(err.Error(), "config:3:") {
		t.Fatalf("err = %v", err)
	}
	// An empty section is no error: the defaults stand.
	cfg, _ = cluster.LoadConfig([]byte("cluster:\n  selector: test\n  test:\n"), env())
	if err := cfg.Section("test").Decode(&v); err != nil {
		t.Fatalf("empty section: %v", err)
	}
}

func TestSelfNodeBindPortBoundaries(t *testing.T) {
	cfg, _ := cluster.DefaultConfig(env())
	if n, err := cfg.SelfNode("127.0.0.1:65535"); err != nil || n.Address.Port != 65535 {
		t.Fatalf("bind port 65535: %v, %v", n, err)
	}
	for _, bad := range []string{"127.0.0.1:65536", "127.0.0.1:-1"} {
		if _, err := cfg.SelfNode(bad); err == nil || !strings.Contains(err.Error(), "bind address") {
			t.Errorf("bind %s: err = %v", bad, err)
		}
	}
}

// TestMisspeltEnvironmentVariableIsRefused: a SW_CLUSTER variable no key
// reads would leave its setting at the default without a word (a gossip
// node running alone, etcd on localhost); LoadConfig refuses it and names
// the variable meant.
func TestMisspeltEnvironmentVariableIsRefused(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"SW_CLUSTER_KV_ENDPOINT", "SW_CLUSTER_KV_ENDPOINTS"},
		{"SW_CLUSTER_NODEID", "SW_CLUSTER_NODE_ID"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			t.Setenv(tc.set, "127.0.0.1:1")
			_, err := cluster.DefaultConfig()
			if !errors.Is(err, cluster.ErrUnknownEnv) {
				t.Fatalf("DefaultConfig with %s set: %v, want an error wrapping ErrUnknownEnv", tc.set, err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.set) || !strings.Contains(msg, "did you mean "+tc.want+"?") {
				t.Errorf("the error does not name %s and suggest %s: %v", tc.set, tc.want, err)
			}
		})
	}
	t.Run("known variables pass", func(t *testing.T) {
		t.Setenv("SW_CLUSTER", "kv")
		t.Setenv("SW_CLUSTER_KV_ENDPOINTS", "127.0.0.1:1")
		if _, err := cluster.DefaultConfig(); err != nil {
			t.Fatal(err)
		}
	})
	// A backend herd ships reads its variables once imported; a program
	// that does not import it leaves them to the programs that do.
	t.Run("a shipped backend's variables, not imported, pass", func(t *testing.T) {
		t.Setenv("SW_CLUSTER_ETCD_ENDPOINT", "127.0.0.1:1")
		t.Setenv("SW_CLUSTER_TLS_CA_FILE", "/ca.pem")
		if _, err := cluster.DefaultConfig(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a placeholder of the user's document is known", func(t *testing.T) {
		t.Setenv("SW_CLUSTER_MINE", "etcd")
		if _, err := cluster.LoadConfig([]byte("cluster:\n  selector: ${SW_CLUSTER_MINE:standalone}\n")); err != nil {
			t.Fatal(err)
		}
	})
}
