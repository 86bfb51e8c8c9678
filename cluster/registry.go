package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/herd-go/herd/internal/suggest"
)

// Factory builds a coordinator from its configuration section and the
// shared options.
type Factory func(ctx context.Context, section Section, opts ...Option) (Coordinator, error)

// The registry: the backends a program can select, and the configuration
// sections declared outside this package, by name. Written by init
// functions, read by New and the configuration loader.
var (
	providersMu sync.RWMutex
	sections    = map[string][]byte{"standalone": nil} // its keys are the advertised address's, which every backend's section has
	providers   = map[string]Factory{}
)

func init() {
	providers["standalone"] = func(_ context.Context, s Section, opts ...Option) (Coordinator, error) {
		var cfg advertised // its only settings: checked here, applied by SelfNode
		if err := s.Decode(&cfg); err != nil {
			return nil, err
		}
		c := NewStandalone()
		c.logger = newOptions(opts...).Logger
		return c, nil
	}
}

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

// shippedEnv is the prefix of the environment variables of each section
// herd ships outside this package. A document may carry such a section,
// and the environment may set its variables, in a program that does not
// import the package that reads it: a SkyWalking application.yml has a
// section for every backend, and one environment often serves several
// programs. Their contents are checked once the package is imported.
var shippedEnv = map[string]string{
	"consul": "SW_CLUSTER_CONSUL_", "etcd": "SW_CLUSTER_ETCD_", "gossip": "SW_CLUSTER_GOSSIP_",
	"kubernetes": "SW_CLUSTER_K8S_", "nacos": "SW_CLUSTER_NACOS_", "zookeeper": "SW_CLUSTER_ZK_",
	"tls": "SW_CLUSTER_TLS_",
}

// knownBackends are the backends herd ships (its shipped sections but tls),
// sorted, for the hint when one is selected but not imported.
var knownBackends = slices.Sorted(func(yield func(string) bool) {
	for name := range shippedEnv {
		if name != "tls" && !yield(name) {
			return
		}
	}
})

// RegisterSection declares a section of the configuration that a package
// other than this one reads (a backend's, or package peertls's tls): its
// body as YAML, each key with its ${SW_…:default} placeholder and a
// comment, and the Go value its defaults decode to. The section joins the
// built-in configuration (DefaultYAML), its keys and environment variables
// become known to LoadConfig, and a file's section of that name is checked
// key by key. The section of a backend (a name also given to
// RegisterProvider) has internalComHost and internalComPort besides, read
// by Config.SelfNode; it does not declare them.
//
// It is meant to be called from an init function and panics, as
// RegisterProvider does, if name is empty or taken, if body is not a YAML
// mapping, or if body's defaults do not decode to exactly defaults: a
// mismatch between the documented defaults and the Go ones is found when
// the program starts, not by a user.
func RegisterSection(name string, body []byte, defaults any) {
	if name == "" || name == "selector" || name == "nodeId" {
		panic("cluster: RegisterSection needs a section name other than selector and nodeId")
	}
	if err := checkDefaults(name, body, defaults); err != nil {
		panic("cluster: RegisterSection " + name + ": " + err.Error())
	}
	providersMu.Lock()
	defer providersMu.Unlock()
	if _, dup := sections[name]; dup {
		panic("cluster: RegisterSection called twice for " + name)
	}
	sections[name] = bytes.Clone(body)
}

// checkDefaults decodes body with no environment into a new value of
// defaults' type and compares the two.
func checkDefaults(name string, body []byte, defaults any) error {
	t := reflect.TypeOf(defaults)
	if t == nil || t.Kind() != reflect.Struct {
		return fmt.Errorf("defaults must be a struct with yaml tags, not %T", defaults)
	}
	cfg := &Config{origins: origins{}, lookup: func(string) (string, bool) { return "", false }}
	raw, err := cfg.parse(sectionYAML(name, body, false), builtinSource)
	if err != nil {
		return err
	}
	got := reflect.New(t)
	if err := (Section{name: name, at: raw.sections[name], cfg: cfg}).Decode(got.Interface()); err != nil {
		return err
	}
	if !reflect.DeepEqual(got.Elem().Interface(), defaults) {
		return fmt.Errorf("the YAML's defaults are %+v, the Go defaults %+v: make them agree", got.Elem().Interface(), defaults)
	}
	return nil
}

// advertisedYAML is the part of every backend's section that cluster reads
// itself (SelfNode), by SkyWalking's names.
const advertisedYAML = `internalComHost: ${SW_CLUSTER_INTERNAL_COM_HOST:""}
internalComPort: ${SW_CLUSTER_INTERNAL_COM_PORT:-1}
`

// sectionYAML returns a document holding one section: body under
// cluster.name, with the advertised address's keys first for a backend.
func sectionYAML(name string, body []byte, backend bool) []byte {
	var b bytes.Buffer
	b.WriteString("cluster:\n")
	writeSection(&b, name, body, backend)
	return b.Bytes()
}

func writeSection(b *bytes.Buffer, name string, body []byte, backend bool) {
	fmt.Fprintf(b, "  %s:\n", name)
	if backend {
		body = append([]byte(advertisedYAML), body...)
	}
	for line := range strings.Lines(string(body)) {
		if strings.TrimSpace(line) != "" {
			b.WriteString("    ")
		}
		b.WriteString(strings.TrimRight(line, "\n") + "\n")
	}
}

// builtin assembles the built-in configuration: the common keys, then
// every registered section by name.
func builtin() []byte {
	providersMu.RLock()
	defer providersMu.RUnlock()
	var b bytes.Buffer
	b.Write(defaultYAML)
	for _, name := range slices.Sorted(maps.Keys(sections)) {
		_, backend := providers[name]
		writeSection(&b, name, sections[name], backend)
	}
	return b.Bytes()
}

// advertises reports whether the named section is a backend's with a
// registered section, and so carries internalComHost and internalComPort.
func advertises(name string) bool {
	providersMu.RLock()
	defer providersMu.RUnlock()
	_, sec := sections[name]
	_, prov := providers[name]
	return sec && prov
}

// shippedButAbsent reports whether name is a section herd ships whose
// package this program does not import.
func shippedButAbsent(name string) bool {
	if _, ok := shippedEnv[name]; !ok {
		return false
	}
	providersMu.RLock()
	defer providersMu.RUnlock()
	_, ok := sections[name]
	return !ok
}

// New builds the coordinator that cfg.Backend names, passing it opts
// (WithLogger, WithBackoff, WithLookupEnv). Unless opts say otherwise, the
// backend reads environment variables the way cfg was loaded.
func New(ctx context.Context, cfg *Config, opts ...Option) (Coordinator, error) {
	if cfg == nil {
		return nil, fmt.Errorf("cluster: New needs a *Config; load one with cluster.DefaultConfig or cluster.LoadConfigFile")
	}
	providersMu.RLock()
	f, ok := providers[cfg.Backend]
	providersMu.RUnlock()
	if !ok {
		accepted := "one of the registered backends: " + strings.Join(Providers(), ", ")
		if slices.Contains(knownBackends, cfg.Backend) {
			accepted += fmt.Sprintf(`; %s is a herd backend that this program does not import: add import _ "github.com/herd-go/herd/cluster/%s" (or _ "github.com/herd-go/herd/cluster/all" for every backend)`, cfg.Backend, cfg.Backend)
		} else {
			accepted += "; herd's backends are standalone, " + strings.Join(knownBackends, ", ")
			if near := suggest.Nearest(cfg.Backend, append([]string{"standalone"}, knownBackends...)); near != "" {
				accepted = "did you mean " + near + "? (" + accepted + ")"
			}
		}
		return nil, cfg.errorAt(cfg.selector, "cluster.selector", cfg.Backend, accepted+" (SW_CLUSTER)", nil)
	}
	sec := cfg.Section(cfg.Backend)
	c, err := f(ctx, sec, append([]Option{WithLookupEnv(cfg.lookup)}, opts...)...)
	if err != nil {
		sec.locate(err)
		return nil, fmt.Errorf("cluster: starting %s coordinator: %w", cfg.Backend, err)
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
