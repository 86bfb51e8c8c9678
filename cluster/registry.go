package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Factory builds a coordinator from its configuration section.
type Factory func(ctx context.Context, section Section) (Coordinator, error)

var (
	providersMu sync.RWMutex
	providers   = map[string]Factory{}
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

// RegisterConfigured registers a backend the usual way: its section is
// decoded (strictly) over defaults() and passed to build. Use it from the
// backend package's init function.
func RegisterConfigured[C any, K Coordinator](name string, defaults func() C, build func(context.Context, C) (K, error)) {
	RegisterProvider(name, func(ctx context.Context, s Section) (Coordinator, error) {
		cfg := defaults()
		if err := s.Decode(&cfg); err != nil {
			return nil, err
		}
		k, err := build(ctx, cfg)
		if err != nil {
			return nil, err // not k: a nil *T in an interface is not a nil Coordinator
		}
		return k, nil
	})
}

// Providers returns the registered backend names, sorted.
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

// New builds the coordinator that cfg.Selector names.
func New(ctx context.Context, cfg *Config) (Coordinator, error) {
	providersMu.RLock()
	f, ok := providers[cfg.Selector]
	providersMu.RUnlock()
	if !ok {
		return nil, &ConfigError{
			Key:      "cluster.selector",
			Value:    cfg.Selector,
			Accepted: "one of the registered backends: " + strings.Join(Providers(), ", ") + " (import a backend package, e.g. _ \"github.com/herd-go/herd/cluster/etcd\", to register it)",
		}
	}
	section, err := cfg.Section(cfg.Selector)
	if err != nil {
		return nil, err
	}
	c, err := f(ctx, section)
	if err != nil {
		return nil, fmt.Errorf("cluster: starting %s coordinator: %w", cfg.Selector, err)
	}
	return c, nil
}
