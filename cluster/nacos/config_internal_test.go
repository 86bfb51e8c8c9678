package nacos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSDKDirectoriesDefaultToTheUserCache(t *testing.T) {
	base, err := os.UserCacheDir()
	if err != nil {
		t.Skip("no user cache directory here:", err)
	}
	logDir, cacheDir := DefaultConfig().dirs()
	for _, d := range []string{logDir, cacheDir} {
		if !strings.HasPrefix(d, filepath.Join(base, "herd", "nacos")) {
			t.Errorf("SDK directory %s is not under %s", d, base)
		}
	}
	cfg := DefaultConfig()
	cfg.LogDir, cfg.CacheDir = "/var/log/x", "/var/cache/x"
	if l, c := cfg.dirs(); l != "/var/log/x" || c != "/var/cache/x" {
		t.Errorf("configured directories not used: %s %s", l, c)
	}
}

// The edges of each range validate enforces, each side.
func TestValidateBoundaries(t *testing.T) {
	for name, c := range map[string]struct {
		mut func(*Config)
		ok  bool
	}{
		"timeout 1h":           {func(c *Config) { c.Timeout = time.Hour }, true},
		"timeout 1h1ns":        {func(c *Config) { c.Timeout = time.Hour + 1 }, false},
		"timeout 1ns":          {func(c *Config) { c.Timeout = 1 }, true},
		"timeout 0":            {func(c *Config) { c.Timeout = 0 }, false},
		"two servers":          {func(c *Config) { c.HostPort = "a:8848,b:8848" }, true},
		"server without port":  {func(c *Config) { c.HostPort = "a" }, false},
		"no servers":           {func(c *Config) { c.HostPort = " , " }, false},
		"keys together":        {func(c *Config) { c.AccessKey, c.SecretKey = "a", "s" }, true},
		"access key alone":     {func(c *Config) { c.AccessKey = "a" }, false},
		"secret key alone":     {func(c *Config) { c.SecretKey = "s" }, false},
		"empty group":          {func(c *Config) { c.Group = "" }, false},
		"empty service":        {func(c *Config) { c.ServiceName = "" }, false},
		"public namespace too": {func(c *Config) { c.Namespace = "" }, true},
	} {
		cfg := DefaultConfig()
		c.mut(&cfg)
		if err := cfg.validate(); (err == nil) != c.ok {
			t.Errorf("%s: validate() = %v, want ok=%v", name, err, c.ok)
		}
	}
}
