package etcd

import (
	"testing"
	"time"
)

// The edges of each range validate enforces, each side.
func TestValidateBoundaries(t *testing.T) {
	for name, c := range map[string]struct {
		mut func(*Config)
		ok  bool
	}{
		"ttl 2s":            {func(c *Config) { c.TTL = 2 * time.Second }, true},
		"ttl 1s":            {func(c *Config) { c.TTL = time.Second }, false},
		"ttl 2.5s":          {func(c *Config) { c.TTL = 2500 * time.Millisecond }, false},
		"dial timeout 1ns":  {func(c *Config) { c.DialTimeout = 1 }, true},
		"dial timeout 0":    {func(c *Config) { c.DialTimeout = 0 }, false},
		"https endpoint":    {func(c *Config) { c.Endpoints = "https://10.0.0.1:2379" }, true},
		"unix endpoint":     {func(c *Config) { c.Endpoints = "unix:///run/etcd.sock" }, true},
		"ftp endpoint":      {func(c *Config) { c.Endpoints = "ftp://10.0.0.1:2379" }, false},
		"auth with a user":  {func(c *Config) { c.Authentication, c.User = true, "herd" }, true},
		"cert and key":      {func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "c.pem", "k.pem" }, true},
		"key without cert":  {func(c *Config) { c.TLSKeyFile = "k.pem" }, false},
		"empty serviceName": {func(c *Config) { c.ServiceName = "" }, false},
	} {
		cfg := DefaultConfig()
		c.mut(&cfg)
		if err := cfg.validate(); (err == nil) != c.ok {
			t.Errorf("%s: validate() = %v, want ok=%v", name, err, c.ok)
		}
	}
}

// The start-up probe gets the host:port of every TCP endpoint, and none
// for a socket.
func TestEndpointsForTheProbe(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Endpoints = "10.0.0.1:2379, http://h:2380,unix:///s.sock"
	eps, tcp, err := cfg.endpoints()
	if err != nil || len(eps) != 3 || len(tcp) != 2 || tcp[0] != "10.0.0.1:2379" || tcp[1] != "h:2380" {
		t.Fatalf("endpoints = %v, probe %v, %v", eps, tcp, err)
	}
}
