package nacos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/internal/testsupport/configcheck"
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
	configcheck.Validates(t, DefaultConfig, Config.validate, map[string]configcheck.Valid[Config]{
		"timeout 1h":           {Mutate: func(c *Config) { c.Timeout = time.Hour }, OK: true},
		"timeout 1h1ns":        {Mutate: func(c *Config) { c.Timeout = time.Hour + 1 }, OK: false},
		"timeout 1ns":          {Mutate: func(c *Config) { c.Timeout = 1 }, OK: true},
		"timeout 0":            {Mutate: func(c *Config) { c.Timeout = 0 }, OK: false},
		"two servers":          {Mutate: func(c *Config) { c.HostPort = "a:8848,b:8848" }, OK: true},
		"server without port":  {Mutate: func(c *Config) { c.HostPort = "a" }, OK: false},
		"no servers":           {Mutate: func(c *Config) { c.HostPort = " , " }, OK: false},
		"keys together":        {Mutate: func(c *Config) { c.AccessKey, c.SecretKey = "a", "s" }, OK: true},
		"access key alone":     {Mutate: func(c *Config) { c.AccessKey = "a" }, OK: false},
		"secret key alone":     {Mutate: func(c *Config) { c.SecretKey = "s" }, OK: false},
		"empty group":          {Mutate: func(c *Config) { c.Group = "" }, OK: false},
		"empty service":        {Mutate: func(c *Config) { c.ServiceName = "" }, OK: false},
		"public namespace too": {Mutate: func(c *Config) { c.Namespace = "" }, OK: true},
	})
}
