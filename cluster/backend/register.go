package backend

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/internal/spi"
)

// Register makes a backend selectable by name (cluster.selector,
// SW_CLUSTER), the usual way: its section of the configuration is decoded
// (strictly) over defaults() and passed to build with the options given to
// cluster.New. A backend calls it from an init function and passes its own
// New as build.
//
// section is the backend's part of the built-in configuration, declared in
// the backend's own package (usually an embedded config.yaml): each key with
// its ${SW_CLUSTER_…:default} placeholder and a comment. It joins
// cluster.DefaultYAML, and its environment variables become known to the
// loader (cluster.RegisterSection); nil declares none, and the backend then
// checks its keys alone. Like cluster.RegisterProvider and
// cluster.RegisterSection, it panics if name is empty or taken, or if
// section's defaults are not exactly defaults(): a backend whose documented
// and Go defaults disagree does not start.
func Register[C any, K cluster.Coordinator](name string, section []byte, defaults func() C, build func(context.Context, C, ...cluster.Option) (K, error)) {
	cluster.RegisterProvider(name, func(ctx context.Context, s cluster.Section, opts ...cluster.Option) (cluster.Coordinator, error) {
		cfg := defaults()
		if err := s.Decode(&cfg); err != nil {
			return nil, err
		}
		k, err := build(ctx, cfg, opts...)
		if err != nil {
			return nil, err // not k: a nil *T in an interface is not a nil Coordinator
		}
		return k, nil
	})
	if section != nil {
		cluster.RegisterSection(name, section, defaults())
	}
}

// NewOptions applies opts over the defaults a backend starts from: a logger
// that discards, a zero Backoff (the backend's own), os.LookupEnv.
func NewOptions(opts ...cluster.Option) cluster.Options {
	o := cluster.Options{Logger: slog.New(slog.DiscardHandler), LookupEnv: os.LookupEnv}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// NewLeadership returns a leadership of election with term, and the
// function that ends it with a cause (the first cause wins). resign releases
// the leadership in the backend; the leadership's Resign calls it once,
// after Done is closed, and bounds how long it waits. Most backends get
// their leaderships from Entry.Lead, which also forgets the campaign when
// the leadership ends.
func NewLeadership(election string, term uint64, resign func(context.Context) error) (*cluster.Leadership, func(cause error)) {
	l, lose := spi.NewLeadership(election, term, resign)
	return l.(*cluster.Leadership), lose
}

// SplitList splits a comma-separated setting such as "a:1, b:2" into its
// trimmed, non-empty items.
func SplitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
