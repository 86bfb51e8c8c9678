package etcd

import (
	"crypto/tls"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/testsupport/configcheck"
	"github.com/herd-go/herd/internal/testsupport/testcert"
)

// The edges of each range validate enforces, each side.
func TestValidateBoundaries(t *testing.T) {
	configcheck.Validates(t, DefaultConfig, Config.validate, map[string]configcheck.Valid[Config]{
		"ttl 2s":             {Mutate: func(c *Config) { c.TTL = 2 * time.Second }, OK: true},
		"ttl 1s":             {Mutate: func(c *Config) { c.TTL = time.Second }, OK: false},
		"ttl 2.5s":           {Mutate: func(c *Config) { c.TTL = 2500 * time.Millisecond }, OK: false},
		"dial timeout 1ns":   {Mutate: func(c *Config) { c.DialTimeout = 1 }, OK: true},
		"dial timeout 0":     {Mutate: func(c *Config) { c.DialTimeout = 0 }, OK: false},
		"https endpoint":     {Mutate: func(c *Config) { c.Endpoints = "https://10.0.0.1:2379" }, OK: true},
		"unix endpoint":      {Mutate: func(c *Config) { c.Endpoints = "unix:///run/etcd.sock" }, OK: true},
		"ftp endpoint":       {Mutate: func(c *Config) { c.Endpoints = "ftp://10.0.0.1:2379" }, OK: false},
		"a URL's empty path": {Mutate: func(c *Config) { c.Endpoints = "http://10.0.0.1:2379/" }, OK: true},
		"a URL's path":       {Mutate: func(c *Config) { c.Endpoints = "http://10.0.0.1:2379/v3" }, OK: false},
		"auth with a user":   {Mutate: func(c *Config) { c.Authentication, c.User = true, "herd" }, OK: true},
		"cert and key":       {Mutate: func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "c.pem", "k.pem" }, OK: true},
		"key without cert":   {Mutate: func(c *Config) { c.TLSKeyFile = "k.pem" }, OK: false},
		"empty serviceName":  {Mutate: func(c *Config) { c.ServiceName = "" }, OK: false},
	})
}

// The start-up probe gets the host:port of every TCP endpoint, and none
// for a socket.
func TestEndpointsForTheProbe(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Endpoints = "10.0.0.1:2379, http://h:2380/,unix:///s.sock"
	eps, tcp, err := cfg.endpoints()
	if err != nil || len(eps) != 3 || eps[1] != "http://h:2380" || len(tcp) != 2 || tcp[0] != "10.0.0.1:2379" || tcp[1] != "h:2380" {
		t.Fatalf("endpoints = %v, probe %v, %v", eps, tcp, err)
	}
}

// The CA file is read and must hold a certificate: a readable file that is
// not one is refused, and a real CA becomes the pool of roots.
func TestTLSCAFile(t *testing.T) {
	ca := testcert.NewCA(t, "herd test CA").File
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	testcert.WriteFile(t, notPEM, []byte("not a certificate"))

	cfg := DefaultConfig()
	cfg.TLSCAFile = ca
	tc, err := cfg.tlsConfig()
	if err != nil || tc == nil || tc.RootCAs == nil || tc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("a valid CA file: %+v, %v", tc, err)
	}
	cfg.TLSCAFile = notPEM
	var ce *cluster.ConfigError
	if _, err := cfg.tlsConfig(); !errors.As(err, &ce) || ce.Key != "cluster.etcd.tlsCaFile" || !strings.Contains(ce.Accepted, "at least one certificate") {
		t.Fatalf("a file with no certificate: %v", err)
	}
}

// A nudge waiting in the buffer is replaced by a newer one, never kept in its
// place: the waiting one may be stale and would then be ignored, leaving the
// newer deletion unrepaired.
func TestSelfGoneKeepsTheNewestDeletion(t *testing.T) {
	c := &Coordinator{selfGone: make(chan int64, 1)}
	c.nudgeSelfGone(3)
	c.nudgeSelfGone(7)
	if got := <-c.selfGone; got != 7 {
		t.Fatalf("waiting nudge = %d, want the newest, 7", got)
	}
	select {
	case got := <-c.selfGone:
		t.Fatalf("a second nudge %d is waiting; want one", got)
	default:
	}
}

// By default every retry, gRPC's reconnects included, comes within a second:
// a server back after an outage is seen that soon (grpc-go alone grows its
// reconnect delay to 120s).
func TestDefaultBackoffRetriesWithinASecond(t *testing.T) {
	bo := cluster.Backoff{}.Or(defaultBackoff)
	if bo.Initial != 100*time.Millisecond || bo.Max != time.Second {
		t.Fatalf("default backoff %+v, want 100ms to 1s", bo)
	}
	if g := reconnectBackoff(bo); g.BaseDelay != bo.Initial || g.MaxDelay != bo.Max {
		t.Fatalf("gRPC reconnect backoff %+v, want %s to %s", g, bo.Initial, bo.Max)
	}
}
