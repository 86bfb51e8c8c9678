package kubernetes

import (
	"testing"

	"github.com/herd-go/herd/internal/testsupport/configcheck"
)

// The edges of each range validate enforces, each side.
func TestValidateBoundaries(t *testing.T) {
	configcheck.Validates(t, DefaultConfig, Config.validate, map[string]configcheck.Valid[Config]{
		"port 65535":            {Mutate: func(c *Config) { c.Port = 65535 }, OK: true},
		"port 65536":            {Mutate: func(c *Config) { c.Port = 65536 }, OK: false},
		"port 1":                {Mutate: func(c *Config) { c.Port = 1 }, OK: true},
		"port -1":               {Mutate: func(c *Config) { c.Port = -1 }, OK: false},
		"port 0 with a name":    {Mutate: func(c *Config) { c.Port = 0 }, OK: true},
		"port 0 without a name": {Mutate: func(c *Config) { c.Port, c.PortName = 0, "" }, OK: false},
		"resync 0":              {Mutate: func(c *Config) { c.Resync = 0 }, OK: true},
		"resync negative":       {Mutate: func(c *Config) { c.Resync = -1 }, OK: false},
		"timeout 1ns":           {Mutate: func(c *Config) { c.Timeout = 1 }, OK: true},
		"timeout 0":             {Mutate: func(c *Config) { c.Timeout = 0 }, OK: false},
		"empty namespace":       {Mutate: func(c *Config) { c.Namespace = "" }, OK: false},
		"empty selector":        {Mutate: func(c *Config) { c.LabelSelector = "" }, OK: false},
		"set-based selector":    {Mutate: func(c *Config) { c.LabelSelector = "app=herd,tier in (a,b),!canary" }, OK: true},
		"unparseable selector":  {Mutate: func(c *Config) { c.LabelSelector = "app in (a" }, OK: false},
	})
}
