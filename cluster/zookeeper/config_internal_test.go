package zookeeper

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
		"sleep 1ms":             {func(c *Config) { c.BaseSleepTimeMs = 1 }, true},
		"sleep 0":               {func(c *Config) { c.BaseSleepTimeMs = 0 }, false},
		"session 1s":            {func(c *Config) { c.SessionTimeout = time.Second }, true},
		"session 999ms":         {func(c *Config) { c.SessionTimeout = 999 * time.Millisecond }, false},
		"connect 1ns":           {func(c *Config) { c.ConnectTimeout = 1 }, true},
		"connect 0":             {func(c *Config) { c.ConnectTimeout = 0 }, false},
		"root /":                {func(c *Config) { c.Root = "/" }, true},
		"root with a slash end": {func(c *Config) { c.Root = "/a/" }, false},
		"relative root":         {func(c *Config) { c.Root = "a" }, false},
		"namespace a":           {func(c *Config) { c.Namespace = "/a/" }, true},
		"namespace a/b":         {func(c *Config) { c.Namespace = "a/b" }, false},
		"acl digest":            {func(c *Config) { c.EnableACL = true }, true},
		"acl other scheme":      {func(c *Config) { c.EnableACL, c.Schema = true, "ip" }, false},
		"acl no password":       {func(c *Config) { c.EnableACL, c.Expression = true, "user:" }, false},
		"acl no user":           {func(c *Config) { c.EnableACL, c.Expression = true, ":pw" }, false},
		"no acl, any scheme":    {func(c *Config) { c.Schema = "ip" }, true},
	} {
		cfg := DefaultConfig()
		c.mut(&cfg)
		if err := cfg.validate(); (err == nil) != c.ok {
			t.Errorf("%s: validate() = %v, want ok=%v", name, err, c.ok)
		}
	}
}

func TestRemotePath(t *testing.T) {
	for _, c := range []struct{ root, ns, want string }{
		{"/skywalking", "", "/skywalking/remote"},
		{"/skywalking", "prod", "/skywalking/prod/remote"},
		{"/", "", "/remote"},
		{"/a", "/b/", "/a/b/remote"},
	} {
		cfg := DefaultConfig()
		cfg.Root, cfg.Namespace = c.root, c.ns
		if got := cfg.remotePath(); got != c.want {
			t.Errorf("root %q namespace %q: %s, want %s", c.root, c.ns, got, c.want)
		}
	}
}
