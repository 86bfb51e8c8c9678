package consul

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/herd-go/herd/internal/testsupport/configcheck"
)

// The edges of each range validate enforces, each side.
func TestValidateBoundaries(t *testing.T) {
	configcheck.Validates(t, DefaultConfig, Config.validate, map[string]configcheck.Valid[Config]{
		"checkTtl 1s":           {Mutate: func(c *Config) { c.CheckTTL = time.Second }, OK: true},
		"checkTtl 999ms":        {Mutate: func(c *Config) { c.CheckTTL = 999 * time.Millisecond }, OK: false},
		"deregister after 1m":   {Mutate: func(c *Config) { c.DeregisterCriticalServiceAfter = time.Minute }, OK: true},
		"deregister after 59s":  {Mutate: func(c *Config) { c.DeregisterCriticalServiceAfter = 59 * time.Second }, OK: false},
		"waitTime 1s":           {Mutate: func(c *Config) { c.WaitTime = time.Second }, OK: true},
		"waitTime 999ms":        {Mutate: func(c *Config) { c.WaitTime = 999 * time.Millisecond }, OK: false},
		"waitTime 10m":          {Mutate: func(c *Config) { c.WaitTime = 10 * time.Minute }, OK: true},
		"waitTime 10m1s":        {Mutate: func(c *Config) { c.WaitTime = 10*time.Minute + time.Second }, OK: false},
		"timeout 1ns":           {Mutate: func(c *Config) { c.Timeout = 1 }, OK: true},
		"timeout 0":             {Mutate: func(c *Config) { c.Timeout = 0 }, OK: false},
		"two agents":            {Mutate: func(c *Config) { c.HostPort = "a:8500, b:8500" }, OK: true},
		"agent without port":    {Mutate: func(c *Config) { c.HostPort = "a" }, OK: false},
		"cert and key together": {Mutate: func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "c.pem", "k.pem" }, OK: true},
		"cert without key":      {Mutate: func(c *Config) { c.TLSCertFile = "c.pem" }, OK: false},
		"empty serviceName":     {Mutate: func(c *Config) { c.ServiceName = "" }, OK: false},
	})
}

// By default the watch and the check retry at most a second apart, so a
// server back after an outage is seen that soon.
func TestDefaultBackoffRetriesWithinASecond(t *testing.T) {
	if defaultBackoff.Initial != 100*time.Millisecond || defaultBackoff.Max != time.Second {
		t.Fatalf("default backoff %+v, want 100ms to 1s", defaultBackoff)
	}
}

// forgotten tells "the agent no longer knows this check" (register again)
// from every other failure (retry, or move to the next agent).
func TestForgotten(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{api.StatusError{Code: 404}, true},
		{api.StatusError{Code: 500, Body: `CheckID "herd:a" does not have associated TTL`}, true},
		{api.StatusError{Code: 500, Body: `Unknown check "herd:a"`}, true},
		{api.StatusError{Code: 500, Body: "rpc error: No cluster leader"}, false},
		{api.StatusError{Code: 403, Body: "Permission denied"}, false},
		{fmt.Errorf("wrapped: %w", api.StatusError{Code: 404}), true},
		{errors.New("dial tcp: connection refused"), false},
	} {
		if got := forgotten(tc.err); got != tc.want {
			t.Errorf("forgotten(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
