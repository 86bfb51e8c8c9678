// Command herd looks at a herd cluster from outside, through the same
// backend the nodes use, configured exactly like a node: the same YAML file
// (-config) and the same environment variables (SW_CLUSTER, …).
//
//	herd [-config FILE] [-timeout D] nodes [-o table|json]
//	herd [-config FILE] [-timeout D] watch [-o text|json]
//	herd [-config FILE] [-timeout D] check [-bind HOST:PORT]
//	herd [-config FILE] [-timeout D] leader [-f] NAME
//
// herd never registers itself: it only reads, so it does not show up in
// the nodes' views. Exit codes: 0 success; 1 check found that a node with
// this configuration would be refused; 2 bad usage or configuration; 3 the
// backend could not be reached or answered with an error.
//
// Install with: go install github.com/herd-go/herd/cmd/herd@latest
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/herd-go/herd/cluster"
	_ "github.com/herd-go/herd/cluster/all" // every backend: the selector picks one
	"github.com/herd-go/herd/cluster/gossip"
	"github.com/herd-go/herd/internal/suggest"
)

// Exit codes, as documented above and in docs/operating.md.
const (
	exitOK          = 0
	exitRefused     = 1
	exitUsage       = 2
	exitUnreachable = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// failure is an error with the exit code it means.
type failure struct {
	code int
	err  error
}

func (f *failure) Error() string { return f.err.Error() }

func fail(code int, format string, args ...any) error {
	return &failure{code, fmt.Errorf(format, args...)}
}

const usage = `usage: herd [-config FILE] [-timeout D] COMMAND [flags]

Commands:
  help     print this text
  nodes    list the cluster's members (one query)
  watch    stream joins and leaves as they happen, until interrupted
  check    validate the configuration, reach the backend, and say whether a
           node with this configuration would be accepted
  leader   show who leads an election (-f follows it)

The backend is configured as for a node: -config names a YAML file, and the
environment variables (SW_CLUSTER, SW_CLUSTER_ETCD_ENDPOINTS, …) apply either
way. Exit codes: 0 ok, 1 check found a problem, 2 bad usage or configuration,
3 backend unreachable.

Global flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("herd", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() {
		fmt.Fprint(global.Output(), usage)
		global.PrintDefaults()
	}
	e := &env{timeout: 10 * time.Second, stdout: stdout, stderr: stderr}
	e.globalFlags(global)
	version := global.Bool("version", false, "print herd's version and exit")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *version {
		fmt.Fprintln(stdout, "herd", moduleVersion())
		return exitOK
	}
	if global.NArg() == 0 {
		global.Usage()
		return exitUsage
	}
	cmds := map[string]func(context.Context, *env, []string) error{
		"nodes": nodes, "watch": watch, "check": check, "leader": leader,
	}
	name := global.Arg(0)
	if name == "help" {
		global.SetOutput(stdout)
		global.Usage()
		return exitOK
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "herd: unknown command %q", name)
		if near := suggest.Nearest(name, slices.Sorted(maps.Keys(cmds))); near != "" {
			fmt.Fprintf(stderr, "; did you mean %s?", near)
		}
		fmt.Fprintln(stderr)
		global.Usage()
		return exitUsage
	}
	err := cmd(ctx, e, global.Args()[1:])
	var f *failure
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &f):
		fmt.Fprintf(stderr, "herd %s: %v\n", name, f.err)
		return f.code
	default:
		fmt.Fprintf(stderr, "herd %s: %v\n", name, err)
		return exitUsage
	}
}

// env is what every command shares.
type env struct {
	configFile string
	timeout    time.Duration
	stdout     io.Writer
	stderr     io.Writer
}

// globalFlags defines -config and -timeout on fs. Every subcommand's flag
// set has them too, so they may come before or after the subcommand.
func (e *env) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.configFile, "config", e.configFile, "YAML configuration file (default: herd's built-in configuration)")
	fs.Var((*duration)(&e.timeout), "timeout", "how long to wait for the backend, with a unit (e.g. 5s, 500ms)")
}

// duration is a flag.Value for a time.Duration whose error says what to
// write, where flag's own says only "parse error".
type duration time.Duration

func (d *duration) String() string { return time.Duration(*d).String() }

func (d *duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration with a unit, such as %ss or %sms", s, s)
	}
	if v <= 0 {
		return fmt.Errorf("want a positive duration, such as 10s")
	}
	*d = duration(v)
	return nil
}

// flags returns a subcommand's flag set, printing its usage to stderr.
func (e *env) flags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("herd "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	e.globalFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: herd [-config FILE] [-timeout D] %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// moduleVersion is herd's version as the Go toolchain recorded it in the
// binary: the module version for go install …@vX, else the VCS revision.
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "(devel)"
	}
	if dirty {
		rev += "+modified"
	}
	return "(devel) " + rev
}

// parse parses a subcommand's flags, turning a mistake into a usage failure.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &failure{exitUsage, err}
	}
	return nil
}

// config loads the configuration as a node would.
func (e *env) config() (*cluster.Config, error) {
	var cfg *cluster.Config
	var err error
	if e.configFile != "" {
		cfg, err = cluster.LoadConfigFile(e.configFile)
	} else {
		cfg, err = cluster.DefaultConfig()
	}
	if err != nil {
		return nil, &failure{exitUsage, err}
	}
	return cfg, nil
}

// connect loads the configuration and connects to its backend.
func (e *env) connect(ctx context.Context) (*cluster.Config, cluster.Coordinator, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	var c cluster.Coordinator
	if cfg.Backend == "gossip" {
		c, err = joinGossip(ctx, cfg)
	} else {
		c, err = cluster.New(ctx, cfg)
	}
	if err != nil {
		var f *failure
		if errors.As(err, &f) {
			return nil, nil, err
		}
		var ce *cluster.ConfigError
		if errors.As(err, &ce) {
			return nil, nil, &failure{exitUsage, err}
		}
		return nil, nil, fail(exitUnreachable, "connecting to the %s backend: %w", cfg.Backend, err)
	}
	return cfg, c, nil
}

// joinGossip joins a gossip cluster as an observer: a member that never
// registers, so no node lists it. Unlike a node, it listens on a free port
// (of the advertised address, of loopback when every seed is on loopback,
// else of the bind address), so it runs beside a node that holds the
// configured port; and it returns once a seed has answered and shared its
// view of the members, or fails naming SW_CLUSTER_GOSSIP_SEEDS.
func joinGossip(ctx context.Context, cfg *cluster.Config) (cluster.Coordinator, error) {
	gc := gossip.DefaultConfig()
	if err := cfg.Section("gossip").Decode(&gc); err != nil {
		return nil, &failure{exitUsage, err}
	}
	if strings.TrimSpace(gc.Seeds) == "" {
		return nil, fail(exitUsage, "herd reads a gossip cluster by joining it: name one or more of its members in cluster.gossip.seeds (SW_CLUSTER_GOSSIP_SEEDS)")
	}
	switch {
	case gc.AdvertiseAddr != "":
		gc.BindAddr = gc.AdvertiseAddr
	case allLoopback(gc.Seeds):
		gc.BindAddr = "127.0.0.1"
	}
	gc.BindPort, gc.AdvertisePort = 0, 0
	c, err := gossip.New(ctx, gc)
	if err != nil {
		return nil, err
	}
	if err := c.AwaitJoin(ctx); err != nil {
		c.Close()
		return nil, fail(exitUnreachable, "joining the gossip cluster: %w", err)
	}
	return c, nil
}

// allLoopback reports whether every seed in a comma-separated list is on a
// loopback address (localhost included).
func allLoopback(seeds string) bool {
	for _, s := range strings.Split(seeds, ",") {
		host, _, err := net.SplitHostPort(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

// query asks the backend for its members once, within the timeout.
func (e *env) query(ctx context.Context, c cluster.Coordinator, backend string) ([]cluster.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	ns, err := c.QueryRemoteNodes(ctx)
	if err != nil {
		return nil, fail(exitUnreachable, "querying the %s backend for members: %w", backend, err)
	}
	return ns, nil
}
