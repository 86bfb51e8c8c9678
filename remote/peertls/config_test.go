package peertls_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/testsupport/testcert"
	"github.com/herd-go/herd/remote/peertls"
)

func env(vars map[string]string) cluster.Option {
	return cluster.WithLookupEnv(func(name string) (string, bool) { v, ok := vars[name]; return v, ok })
}

func TestDefaultIsPlaintext(t *testing.T) {
	cfg, err := cluster.DefaultConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c, err := peertls.FromCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c != peertls.DefaultConfig() || c.Enabled() {
		t.Fatalf("built-in cluster.tls = %+v, want DefaultConfig %+v (plaintext)", c, peertls.DefaultConfig())
	}
	cr, err := peertls.Load(cfg)
	if err != nil || cr.Enabled() || cr.Transport().Info().SecurityProtocol != "insecure" {
		t.Fatalf("Load of the default: %v, enabled %v", err, cr.Enabled())
	}
}

func TestEnvironmentTurnsTLSOn(t *testing.T) {
	ca := testcert.NewCA(t, "fleet")
	leaf := ca.Issue(testcert.LeafOptions{})
	cfg, err := cluster.DefaultConfig(env(map[string]string{
		"SW_CLUSTER_TLS_CA_FILE": ca.File, "SW_CLUSTER_TLS_CERT_FILE": leaf.CertFile, "SW_CLUSTER_TLS_KEY_FILE": leaf.KeyFile,
		"SW_CLUSTER_TLS_SERVER_NAME": "peers.internal", "SW_CLUSTER_TLS_REQUIRE_CLIENT_CERT": "false", "SW_CLUSTER_TLS_MIN_VERSION": "1.2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := peertls.FromCluster(cfg)
	want := peertls.Config{CAFile: ca.File, CertFile: leaf.CertFile, KeyFile: leaf.KeyFile, ServerName: "peers.internal", RequireClientCert: false, MinVersion: "1.2"}
	if err != nil || c != want {
		t.Fatalf("FromCluster = %+v, %v; want %+v", c, err, want)
	}
	cr, err := peertls.Load(cfg)
	if err != nil || !cr.Enabled() || cr.Transport().Info().SecurityProtocol != "tls" {
		t.Fatalf("Load: %v", err)
	}
}

func TestYAML(t *testing.T) {
	cfg, err := cluster.LoadConfig([]byte("cluster:\n  selector: standalone\n  tls:\n    caFile: /etc/herd/ca.pem\n    certFile: /etc/herd/cert.pem\n    keyFile: /etc/herd/key.pem\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c, err := peertls.FromCluster(cfg)
	if err != nil || c.CAFile != "/etc/herd/ca.pem" || !c.RequireClientCert || c.MinVersion != "1.3" {
		t.Fatalf("FromCluster = %+v, %v", c, err)
	}
	_, err = cluster.LoadConfig([]byte("cluster:\n  tls:\n    caFlie: x\n"), env(nil))
	if !errors.Is(err, cluster.ErrUnknownKey) || !strings.Contains(err.Error(), "did you mean cluster.tls.caFile") {
		t.Fatalf("a misspelt key: %v", err)
	}
}

// Each bad setting is refused at start with an error naming it.
func TestBadSettings(t *testing.T) {
	ca := testcert.NewCA(t, "fleet")
	other := testcert.NewCA(t, "other")
	leaf := ca.Issue(testcert.LeafOptions{})
	foreign := other.Issue(testcert.LeafOptions{})
	expired := ca.Issue(testcert.LeafOptions{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	good := peertls.Config{CAFile: ca.File, CertFile: leaf.CertFile, KeyFile: leaf.KeyFile, RequireClientCert: true, MinVersion: "1.3"}
	for name, tc := range map[string]struct {
		mutate func(*peertls.Config)
		key    string
		says   string
	}{
		"no key":                    {func(c *peertls.Config) { c.KeyFile = "" }, "cluster.tls.keyFile", "SW_CLUSTER_TLS_KEY_FILE"},
		"no CA":                     {func(c *peertls.Config) { c.CAFile = "" }, "cluster.tls.caFile", "SW_CLUSTER_TLS_CA_FILE"},
		"no certificate":            {func(c *peertls.Config) { c.CertFile = "" }, "cluster.tls.certFile", "SW_CLUSTER_TLS_CERT_FILE"},
		"TLS 1.1":                   {func(c *peertls.Config) { c.MinVersion = "1.1" }, "cluster.tls.minVersion", `"1.3" or "1.2"`},
		"server name without TLS":   {func(c *peertls.Config) { *c = peertls.DefaultConfig(); c.ServerName = "x" }, "cluster.tls.serverName", "SW_CLUSTER_TLS_CA_FILE"},
		"missing CA file":           {func(c *peertls.Config) { c.CAFile = c.CAFile + ".missing" }, "cluster.tls.caFile", "no such file"},
		"CA file without a CA":      {func(c *peertls.Config) { c.CAFile = leaf.KeyFile }, "cluster.tls.caFile", "at least one CA certificate"},
		"key of another":            {func(c *peertls.Config) { c.KeyFile = foreign.KeyFile }, "cluster.tls.certFile", "cluster.tls.keyFile"},
		"certificate of another CA": {func(c *peertls.Config) { c.CertFile, c.KeyFile = foreign.CertFile, foreign.KeyFile }, "cluster.tls.certFile", "signed by a CA in cluster.tls.caFile"},
		"expired certificate":       {func(c *peertls.Config) { c.CertFile, c.KeyFile = expired.CertFile, expired.KeyFile }, "cluster.tls.certFile", "expired"},
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			tc.mutate(&c)
			_, err := peertls.New(c)
			var ce *cluster.ConfigError
			if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("New = %v; want a *cluster.ConfigError for %s saying %q", err, tc.key, tc.says)
			}
		})
	}
	if _, err := peertls.New(good); err != nil {
		t.Fatalf("the good settings: %v", err)
	}
}
