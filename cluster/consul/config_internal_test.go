package consul

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
		"checkTtl 1s":           {func(c *Config) { c.CheckTTL = time.Second }, true},
		"checkTtl 999ms":        {func(c *Config) { c.CheckTTL = 999 * time.Millisecond }, false},
		"deregister after 1m":   {func(c *Config) { c.DeregisterCriticalServiceAfter = time.Minute }, true},
		"deregister after 59s":  {func(c *Config) { c.DeregisterCriticalServiceAfter = 59 * time.Second }, false},
		"waitTime 1s":           {func(c *Config) { c.WaitTime = time.Second }, true},
		"waitTime 999ms":        {func(c *Config) { c.WaitTime = 999 * time.Millisecond }, false},
		"waitTime 10m":          {func(c *Config) { c.WaitTime = 10 * time.Minute }, true},
		"waitTime 10m1s":        {func(c *Config) { c.WaitTime = 10*time.Minute + time.Second }, false},
		"timeout 1ns":           {func(c *Config) { c.Timeout = 1 }, true},
		"timeout 0":             {func(c *Config) { c.Timeout = 0 }, false},
		"two agents":            {func(c *Config) { c.HostPort = "a:8500, b:8500" }, true},
		"agent without port":    {func(c *Config) { c.HostPort = "a" }, false},
		"cert and key together": {func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "c.pem", "k.pem" }, true},
		"cert without key":      {func(c *Config) { c.TLSCertFile = "c.pem" }, false},
		"empty serviceName":     {func(c *Config) { c.ServiceName = "" }, false},
	} {
		cfg := DefaultConfig()
		c.mut(&cfg)
		if err := cfg.validate(); (err == nil) != c.ok {
			t.Errorf("%s: validate() = %v, want ok=%v", name, err, c.ok)
		}
	}
}
