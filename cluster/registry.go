package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/herd-go/herd/internal/suggest"
)

// Factory builds a coordinator from its configuration section and the
// shared options.
type Factory func(ctx context.Context, section Section, opts ...Option) (Coordinator, error)

var (
	providersMu sync.RWMutex
	providers   = map[string]Factory{
		"standalone": func(_ context.Context, s Section, _ ...Option) (Coordinator, error) {
			var cfg advertised // its only settings: checked here, applied by SelfNode
			if err := s.Decode(&cfg); err != nil {
				return nil, err
			}
			return NewStandalone(), nil
		},
	}
)

// RegisterProvider makes a backend available under name (the value of
// cluster.selector). It is meant to be called from a backend package's init
// function and panics if name is empty or already taken, as database/sql's
// Register does: both are programming errors found at start-up.
func RegisterProvider(name string, f Factory) {
	providersMu.Lock()
	defer providersMu.Unlock()
	if name == "" || f == nil {
		panic("cluster: RegisterProvider needs a name and a factory")
	}
	if _, dup := providers[name]; dup {
		panic("cluster: RegisterProvider called twice for " + name)
	}
	providers[name] = f
}

// Providers returns the registered backend names, sorted. standalone is
// always there; the others are there once their package is imported.
func Providers() []string {
	providersMu.RLock()
	defer providersMu.RUnlock()
	names := make([]string, 0, len(providers))
	for n := range providers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// knownBackends are the backends herd ships, for the hint when one is
// selected but not imported.
var knownBackends = []string{"consul", "etcd", "gossip", "kubernetes", "nacos", "zookeeper"}

// New builds the coordinator that cfg.Selector names, passing it opts
// (WithLogger, WithBackoff, WithLookupEnv). Unless opts say otherwise, the
// backend reads environment variables the way cfg was loaded.
func New(ctx context.Context, cfg *Config, opts ...Option) (Coordinator, error) {
	if cfg == nil {
		return nil, fmt.Errorf("cluster: New needs a *Config; load one with cluster.DefaultConfig or cluster.LoadConfigFile")
	}
	providersMu.RLock()
	f, ok := providers[cfg.Selector]
	providersMu.RUnlock()
	if !ok {
		accepted := "one of the registered backends: " + strings.Join(Providers(), ", ")
		if slices.Contains(knownBackends, cfg.Selector) {
			accepted += fmt.Sprintf(`; %s is a herd backend that this program does not import: add import _ "github.com/herd-go/herd/cluster/%s" (or _ "github.com/herd-go/herd/cluster/all" for every backend)`, cfg.Selector, cfg.Selector)
		} else {
			accepted += "; herd's backends are standalone, " + strings.Join(knownBackends, ", ")
			if near := suggest.Nearest(cfg.Selector, append([]string{"standalone"}, knownBackends...)); near != "" {
				accepted = "did you mean " + near + "? (" + accepted + ")"
			}
		}
		return nil, cfg.errorAt(cfg.selector, "cluster.selector", cfg.Selector, accepted+" (SW_CLUSTER)", nil)
	}
	sec := cfg.Section(cfg.Selector)
	c, err := f(ctx, sec, append([]Option{WithLookupEnv(cfg.lookup)}, opts...)...)
	if err != nil {
		sec.locate(err)
		return nil, fmt.Errorf("cluster: starting %s coordinator: %w", cfg.Selector, err)
	}
	return c, nil
}

// Check validates cfg as New would, without connecting: the selector, the
// selected backend's section and every value in it. It is what a program
// (or the herd command's check) runs before it starts anything, so that a
// mistake is reported as one, never as an unreachable backend.
//
// Backends check their configuration before they use New's context; Check
// calls New with a context that has already ended, and takes the backend's
// refusal to start for want of it as a pass.
func Check(cfg *Config) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := New(ctx, cfg)
	switch {
	case err == nil: // a backend with nothing to connect to (standalone)
		return c.Close()
	case errors.Is(err, context.Canceled):
		return nil
	}
	return err
}
