package etcd

import (
	"testing"
	"time"

	"github.com/herd-go/herd/cluster/clustertest"
)

// The edges of each range validate enforces, each side.
func TestValidateBoundaries(t *testing.T) {
	clustertest.Validates(t, DefaultConfig, Config.validate, map[string]clustertest.Valid[Config]{
		"ttl 2s":            {Mutate: func(c *Config) { c.TTL = 2 * time.Second }, OK: true},
		"ttl 1s":            {Mutate: func(c *Config) { c.TTL = time.Second }, OK: false},
		"ttl 2.5s":          {Mutate: func(c *Config) { c.TTL = 2500 * time.Millisecond }, OK: false},
		"dial timeout 1ns":  {Mutate: func(c *Config) { c.DialTimeout = 1 }, OK: true},
		"dial timeout 0":    {Mutate: func(c *Config) { c.DialTimeout = 0 }, OK: false},
		"https endpoint":    {Mutate: func(c *Config) { c.Endpoints = "https://10.0.0.1:2379" }, OK: true},
		"unix endpoint":     {Mutate: func(c *Config) { c.Endpoints = "unix:///run/etcd.sock" }, OK: true},
		"ftp endpoint":      {Mutate: func(c *Config) { c.Endpoints = "ftp://10.0.0.1:2379" }, OK: false},
		"auth with a user":  {Mutate: func(c *Config) { c.Authentication, c.User = true, "herd" }, OK: true},
		"cert and key":      {Mutate: func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "c.pem", "k.pem" }, OK: true},
		"key without cert":  {Mutate: func(c *Config) { c.TLSKeyFile = "k.pem" }, OK: false},
		"empty serviceName": {Mutate: func(c *Config) { c.ServiceName = "" }, OK: false},
	})
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
