package kubernetes

import "testing"

// The edges of each range validate enforces, each side.
func TestValidateBoundaries(t *testing.T) {
	for name, c := range map[string]struct {
		mut func(*Config)
		ok  bool
	}{
		"port 65535":            {func(c *Config) { c.Port = 65535 }, true},
		"port 65536":            {func(c *Config) { c.Port = 65536 }, false},
		"port 1":                {func(c *Config) { c.Port = 1 }, true},
		"port -1":               {func(c *Config) { c.Port = -1 }, false},
		"port 0 with a name":    {func(c *Config) { c.Port = 0 }, true},
		"port 0 without a name": {func(c *Config) { c.Port, c.PortName = 0, "" }, false},
		"resync 0":              {func(c *Config) { c.Resync = 0 }, true},
		"resync negative":       {func(c *Config) { c.Resync = -1 }, false},
		"timeout 1ns":           {func(c *Config) { c.Timeout = 1 }, true},
		"timeout 0":             {func(c *Config) { c.Timeout = 0 }, false},
		"empty namespace":       {func(c *Config) { c.Namespace = "" }, false},
		"empty selector":        {func(c *Config) { c.LabelSelector = "" }, false},
		"set-based selector":    {func(c *Config) { c.LabelSelector = "app=herd,tier in (a,b),!canary" }, true},
		"unparseable selector":  {func(c *Config) { c.LabelSelector = "app in (a" }, false},
	} {
		cfg := DefaultConfig()
		c.mut(&cfg)
		if err := cfg.validate(); (err == nil) != c.ok {
			t.Errorf("%s: validate() = %v, want ok=%v", name, err, c.ok)
		}
	}
}
