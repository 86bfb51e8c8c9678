package zookeeper

import (
	"testing"
	"time"

	"github.com/herd-go/herd/internal/testsupport/configcheck"
)

// The edges of each range validate enforces, each side.
func TestValidateBoundaries(t *testing.T) {
	configcheck.Validates(t, DefaultConfig, Config.validate, map[string]configcheck.Valid[Config]{
		"sleep 1ms":             {Mutate: func(c *Config) { c.BaseSleepTimeMs = 1 }, OK: true},
		"sleep 0":               {Mutate: func(c *Config) { c.BaseSleepTimeMs = 0 }, OK: false},
		"session 1s":            {Mutate: func(c *Config) { c.SessionTimeout = time.Second }, OK: true},
		"session 999ms":         {Mutate: func(c *Config) { c.SessionTimeout = 999 * time.Millisecond }, OK: false},
		"connect 1ns":           {Mutate: func(c *Config) { c.ConnectTimeout = 1 }, OK: true},
		"connect 0":             {Mutate: func(c *Config) { c.ConnectTimeout = 0 }, OK: false},
		"root /":                {Mutate: func(c *Config) { c.Root = "/" }, OK: true},
		"root with a slash end": {Mutate: func(c *Config) { c.Root = "/a/" }, OK: false},
		"relative root":         {Mutate: func(c *Config) { c.Root = "a" }, OK: false},
		"namespace a":           {Mutate: func(c *Config) { c.Namespace = "/a/" }, OK: true},
		"namespace a/b":         {Mutate: func(c *Config) { c.Namespace = "a/b" }, OK: false},
		"acl digest":            {Mutate: func(c *Config) { c.EnableACL = true }, OK: true},
		"acl other scheme":      {Mutate: func(c *Config) { c.EnableACL, c.Schema = true, "ip" }, OK: false},
		"acl no password":       {Mutate: func(c *Config) { c.EnableACL, c.Expression = true, "user:" }, OK: false},
		"acl no user":           {Mutate: func(c *Config) { c.EnableACL, c.Expression = true, ":pw" }, OK: false},
		"no acl, any scheme":    {Mutate: func(c *Config) { c.Schema = "ip" }, OK: true},
	})
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

// Retries start at baseSleepTimeMs and are at most a second apart.
func TestDefaultBackoff(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BaseSleepTimeMs = 50
	if bo := cfg.defaultBackoff(); bo.Initial != 50*time.Millisecond || bo.Max != time.Second {
		t.Fatalf("default backoff %+v, want 50ms (baseSleepTimeMs) to 1s", bo)
	}
}
