// Package configcheck is test support for herd's backends: tables of
// invalid configurations that must be refused with the key to fix, valid
// ones that must pass, and a start-up that must fail fast.
package configcheck

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
)

// ConfigCase is one invalid configuration: Mutate breaks a valid one, and
// Key is the YAML key the error must name.
type ConfigCase[C any] struct {
	Mutate func(*C)
	Key    string
}

// Valid is one case for Validates: a change to a backend's defaults, and
// whether its validation must accept the result.
type Valid[C any] struct {
	Mutate func(*C)
	OK     bool
}

// FailsFast checks that start, pointed at a server that is not there, fails
// within d with an error that names envVar, the setting to check.
func FailsFast(t *testing.T, d time.Duration, envVar string, start func() error) {
	t.Helper()
	began := time.Now()
	err := start()
	if err == nil || !strings.Contains(err.Error(), envVar) {
		t.Fatalf("err = %v, want an error naming %s", err, envVar)
	}
	if took := time.Since(began); took > d {
		t.Fatalf("took %s to fail, want at most %s", took, d)
	}
}

// ConfigErrors checks that each case, applied to defaults(), makes start
// fail with a *cluster.ConfigError naming the case's key.
func ConfigErrors[C any](t *testing.T, defaults func() C, start func(context.Context, C) error, cases map[string]ConfigCase[C]) {
	t.Helper()
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := defaults()
			c.Mutate(&cfg)
			err := start(context.Background(), cfg)
			var ce *cluster.ConfigError
			if !errors.As(err, &ce) || ce.Key != c.Key {
				t.Fatalf("err = %v, want a ConfigError for %s", err, c.Key)
			}
		})
	}
}

// Validates checks each case: defaults() changed by Mutate passes validate
// exactly when the case says OK. Backends use it for both sides of every
// range their configuration enforces.
func Validates[C any](t *testing.T, defaults func() C, validate func(C) error, cases map[string]Valid[C]) {
	t.Helper()
	for name, c := range cases {
		cfg := defaults()
		c.Mutate(&cfg)
		if err := validate(cfg); (err == nil) != c.OK {
			t.Errorf("%s: validate() = %v, want ok=%v", name, err, c.OK)
		}
	}
}
