package cluster

import (
	"log/slog"
	"os"
	"time"
)

// Backoff bounds the delays of a retry loop: jittered, doubling from Initial
// up to Max, and never giving up. A zero field takes the default of whoever
// uses it (each backend documents its own).
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// Or fills b's zero fields from def.
func (b Backoff) Or(def Backoff) Backoff {
	if b.Initial <= 0 {
		b.Initial = def.Initial
	}
	if b.Max <= 0 {
		b.Max = def.Max
	}
	return b
}

// Option sets what every backend shares: the logger, the retry backoff, and
// how environment variables are read. The same options go to LoadConfig
// (which uses only WithLookupEnv), to New, and to any backend's New.
type Option func(*Options)

// Options is the result of applying Options; backends read it with
// backend.NewOptions.
type Options struct {
	// Logger receives warnings (lost registrations, watch restarts, malformed
	// entries). herd logs nothing unless a logger is given: every such event
	// is also returned, counted in a Stats method, or passed to a handler.
	Logger *slog.Logger
	// Backoff bounds retry delays; zero fields take the backend's defaults.
	Backoff Backoff
	// LookupEnv reads environment variables: ${NAME:default} placeholders,
	// and the variables a backend reads at run time (kubernetes: the pod's
	// UID variable and HOSTNAME).
	LookupEnv LookupEnv
	// environ lists the environment that LookupEnv reads, for LoadConfig's
	// check of SW_CLUSTER variables no key reads; nil when a custom
	// LookupEnv was given (it cannot be listed).
	environ func() []string
}

// LoggerOf returns the logger a coordinator was given with WithLogger, so
// that what a program builds over it (a remote.Manager, a shard group)
// logs to the same place unless told otherwise; nil when c keeps none.
// Every coordinator in this module keeps one.
func LoggerOf(c any) *slog.Logger {
	if l, ok := c.(interface{ Logger() *slog.Logger }); ok {
		return l.Logger()
	}
	return nil
}

// LookupEnv reads one environment variable, like os.LookupEnv.
type LookupEnv func(name string) (value string, ok bool)

// WithLogger sends warnings to l. Without it herd logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(o *Options) {
		if l != nil {
			o.Logger = l
		}
	}
}

// WithBackoff sets the retry delays of re-registration, re-listing and
// reconnecting; zero fields keep the backend's defaults.
func WithBackoff(b Backoff) Option { return func(o *Options) { o.Backoff = b } }

// WithLookupEnv reads environment variables with lookup instead of
// os.LookupEnv, for placeholders and for the variables backends read.
func WithLookupEnv(lookup LookupEnv) Option {
	return func(o *Options) {
		if lookup != nil {
			o.LookupEnv, o.environ = lookup, nil
		}
	}
}

// newOptions applies opts over the defaults: a logger that discards, the
// backend's own backoff, os.LookupEnv (and os.Environ, for LoadConfig's
// check of the environment).
func newOptions(opts ...Option) Options {
	o := Options{Logger: slog.New(slog.DiscardHandler), LookupEnv: os.LookupEnv, environ: os.Environ}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}
