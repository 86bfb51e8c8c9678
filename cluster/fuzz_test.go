package cluster_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/herd-go/herd/cluster"
)

// Addresses come from configuration and from entries: parsing never
// panics, and what it accepts prints back to itself.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"10.0.0.1:11800", "[::1]:2379", "peer-1.herd.internal:1", "host:0", "host:65536", ":80", "[::1%eth0]:1", "a:b:c", "host:+1", "0.0.0.0:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := cluster.ParseAddress(s)
		if err != nil {
			return
		}
		if a.Port < 1 || a.Port > 65535 || a.Host == "" {
			t.Fatalf("ParseAddress(%q) accepted %+v", s, a)
		}
		back, err := cluster.ParseAddress(a.String())
		if err != nil || back != a {
			t.Fatalf("ParseAddress(%q) = %+v, which prints as %q and parses as %+v, %v", s, a, a.String(), back, err)
		}
		if list, err := cluster.ParseAddressList(s + "," + s); err != nil || len(list) != 2 {
			t.Fatalf("ParseAddressList of %q twice: %v, %v", s, list, err)
		}
	})
}

// IDs and hosts are validated before anything is stored: never a panic, and
// an accepted ID always within the documented alphabet and length.
func FuzzCheckIDAndHost(f *testing.F) {
	for _, s := range []string{"n1", "a.b_c-d", "-x", "", strings.Repeat("a", 254), "127.0.0.1", "::", "bad host", "xn--80ak6aa92e.com", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if cluster.CheckID(s) == nil {
			if len(s) == 0 || len(s) > cluster.MaxIDLength {
				t.Fatalf("CheckID accepted %q of length %d", s, len(s))
			}
			for _, r := range s {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
					t.Fatalf("CheckID accepted %q with %q", s, r)
				}
			}
		}
		if cluster.CheckHost(s) == nil && (s == "" || s == "0.0.0.0" || s == "::") {
			t.Fatalf("CheckHost accepted %q", s)
		}
	})
}

// The configuration loader takes a user's YAML and environment: any input
// gives a *Config or an error, never a panic, and ${…} substitution never
// leaves a placeholder of a variable it was given.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("cluster:\n  selector: ${SW_CLUSTER:etcd}\n  etcd:\n    endpoints: ${SW_CLUSTER_ETCD_ENDPOINTS:localhost:2379}\n"), "10.0.0.1:2379")
	f.Add([]byte("cluster:\n  selector: standalone\n  nodeId: ${SW_CLUSTER_NODE_ID}\n"), "n1")
	f.Add([]byte("cluster:\n  selector: ${SW_CLUSTER\n"), "")
	f.Add([]byte("cluster:\n  etcd: [1, 2]\n"), "")
	f.Add([]byte("cluster: &a\n  x: *a\n"), "")
	f.Add([]byte("cluster:\n  tls:\n    caFile: ${SW_CLUSTER_TLS_CA_FILE:}\n"), "/etc/ca.pem")
	f.Add([]byte("other: 1\n"), "")
	f.Fuzz(func(t *testing.T, data []byte, value string) {
		env := cluster.WithLookupEnv(func(name string) (string, bool) { return value, strings.HasPrefix(name, "SW_") })
		cfg, err := cluster.LoadConfig(data, env)
		if err != nil {
			var ce *cluster.ConfigError
			if errors.As(err, &ce) && ce.Key == "" && !errors.Is(err, cluster.ErrUnknownKey) {
				t.Fatalf("a ConfigError without a key: %v", err)
			}
			return
		}
		if cfg.Backend == "" {
			t.Fatal("a loaded config without a selector")
		}
		var section struct {
			Endpoints string `yaml:"endpoints"`
		}
		_ = cfg.Section("etcd").Decode(&section) // must not panic on any shape
	})
}
