package cluster

import (
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/herd-go/herd/internal/suggest"
)

//go:embed default.yaml
var defaultYAML []byte

// builtinSource names the built-in default in messages.
const builtinSource = "herd's built-in default"

// DefaultYAML returns herd's built-in configuration, the one used when no
// file is given: the common keys (default.yaml in this package) and the
// section of every backend the program imports, each declared in the
// backend's own package (RegisterSection). It documents every key and its
// environment variable.
func DefaultYAML() []byte { return builtin() }

// ErrUnknownKey is wrapped by the ConfigError for a key herd does not know.
var ErrUnknownKey = errors.New("unknown key")

// ConfigError is a configuration value herd cannot use. It names the key,
// the value found, what would be accepted, and where the value came from.
type ConfigError struct {
	Key      string // full YAML path, e.g. cluster.etcd.ttl
	Value    string
	Accepted string // what would be accepted, and how to fix it
	// EnvVar is the environment variable whose value this was, when one
	// was set (a ${NAME:default} placeholder resolved from the environment).
	EnvVar string
	// File and Line locate the key in the YAML it came from: the user's file
	// (its path with LoadConfigFile, "config" with LoadConfig), or herd's
	// built-in default. Zero when the error is not about a loaded value.
	File string
	Line int
	Err  error // optional underlying cause
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" && e.Line > 0 {
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	}
	if errors.Is(e.Err, ErrUnknownEnv) {
		fmt.Fprintf(&b, "environment variable %s is set: %s", e.EnvVar, e.Accepted)
		return b.String()
	}
	if errors.Is(e.Err, ErrUnknownKey) {
		fmt.Fprintf(&b, "unknown key %s: %s", e.Key, e.Accepted)
		return b.String()
	}
	fmt.Fprintf(&b, "%s = %q", e.Key, e.Value)
	if e.EnvVar != "" {
		fmt.Fprintf(&b, " (from %s)", e.EnvVar)
	}
	fmt.Fprintf(&b, " is not accepted: want %s", e.Accepted)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Config is the cluster part of a SkyWalking-style application.yml, after
// ${NAME:default} substitution.
type Config struct {
	// Backend names the backend: standalone, etcd, … (the YAML key
	// cluster.selector and SW_CLUSTER, by Apache SkyWalking's names).
	Backend string
	// NodeID is the configured stable node ID; empty means generate one.
	NodeID string

	selector, nodeID located
	sections         map[string]located
	origins          origins
	lookup           LookupEnv
}

// located is a YAML node and the name of the document it came from.
type located struct {
	node *yaml.Node
	file string
}

// origins records, per substituted scalar, the environment variable that
// set it.
type origins map[*yaml.Node]string

// errorAt builds a ConfigError for the value at n.
func (c *Config) errorAt(at located, key, value, accepted string, err error) *ConfigError {
	e := &ConfigError{Key: key, Value: value, Accepted: accepted, Err: err}
	if at.node == nil {
		return e
	}
	if at.file != builtinSource { // a line of herd's own file is no help to the user
		e.File, e.Line = at.file, at.node.Line
	}
	if c != nil {
		e.EnvVar = c.origins[at.node]
	}
	return e
}

// DefaultConfig loads the built-in configuration, so environment variables
// alone (SW_CLUSTER=etcd SW_CLUSTER_ETCD_ENDPOINTS=…) configure herd.
func DefaultConfig(opts ...Option) (*Config, error) { return LoadConfig(nil, opts...) }

// LoadConfigFile reads a YAML file with a top-level cluster key, such as a
// SkyWalking application.yml; other top-level keys are ignored. Errors name
// the file and line.
func LoadConfigFile(path string, opts ...Option) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return load(data, path, opts)
}

// LoadConfig parses YAML with a top-level cluster key. With nil data it
// loads the built-in default. A backend section the document leaves out is
// taken from the built-in default, so a document need only name what it
// changes. Every key under cluster must be one herd knows (see DefaultYAML),
// or the section of a backend registered with RegisterProvider; anything else
// is a *ConfigError that suggests the nearest known key. Of opts, only
// WithLookupEnv applies here; the Config keeps it for New.
func LoadConfig(data []byte, opts ...Option) (*Config, error) {
	return load(data, "config", opts)
}

func load(data []byte, source string, opts []Option) (*Config, error) {
	o := newOptions(opts...)
	// While the documents are parsed, every variable a placeholder names is
	// noted, for checkEnv; the Config keeps the plain lookup for New.
	read := map[string]bool{}
	cfg := &Config{Backend: "standalone", origins: origins{}, lookup: func(name string) (string, bool) {
		read[name] = true
		return o.LookupEnv(name)
	}}
	base, err := cfg.parse(builtin(), builtinSource)
	if err != nil {
		return nil, fmt.Errorf("built-in default: %w", err)
	}
	merged := base
	if data != nil {
		user, err := cfg.parse(data, source)
		if err != nil {
			return nil, err
		}
		if err := checkKeys(user, base); err != nil {
			return nil, err
		}
		for name, sec := range base.sections {
			if _, ok := user.sections[name]; !ok {
				user.sections[name] = sec
			}
		}
		merged = user
	}
	cfg.lookup = o.LookupEnv
	if o.environ != nil {
		if err := checkEnv(o.environ(), read); err != nil {
			return nil, err
		}
	}
	cfg.sections = merged.sections
	cfg.selector, cfg.nodeID = merged.selector, merged.nodeID
	if n := cfg.selector.node; n != nil && n.Value != "" {
		cfg.Backend = n.Value
	}
	if n := cfg.nodeID.node; n != nil && n.Tag != "!!null" {
		cfg.NodeID = n.Value
	}
	return cfg, nil
}

// rawCluster is one document's cluster mapping, split by key.
type rawCluster struct {
	source           string // the document's name in messages
	selector, nodeID located
	sections         map[string]located
	keys             map[string]*yaml.Node // each key's own node, for its line
}

func (c *Config) parse(data []byte, source string) (*rawCluster, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config: %s is not valid YAML: %w", source, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config: %s: want a YAML mapping with a top-level cluster key", source)
	}
	clusterNode := mappingValue(doc.Content[0], "cluster")
	if clusterNode == nil || clusterNode.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config: %s has no cluster section: want a top-level mapping key cluster with at least selector", source)
	}
	if err := c.substitute(clusterNode, "cluster", source); err != nil {
		return nil, err
	}
	raw := &rawCluster{source: source, sections: map[string]located{}, keys: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(clusterNode.Content); i += 2 {
		k, val := clusterNode.Content[i], clusterNode.Content[i+1]
		raw.keys[k.Value] = k
		at := located{val, source}
		switch k.Value {
		case "selector":
			raw.selector = at
		case "nodeId":
			raw.nodeID = at
		default:
			raw.sections[k.Value] = at
		}
	}
	return raw, nil
}

// checkKeys refuses keys under cluster that neither the built-in default
// nor a registered backend knows, suggesting the nearest known one.
func checkKeys(user, base *rawCluster) error {
	known := []string{"selector", "nodeId"}
	for name := range base.sections {
		known = append(known, name)
	}
	for _, p := range append(Providers(), slices.Collect(maps.Keys(shippedEnv))...) {
		if !slices.Contains(known, p) {
			known = append(known, p)
		}
	}
	slices.Sort(known)
	for name, k := range user.keys {
		if !slices.Contains(known, name) {
			return unknownKey("cluster", name, user.source, k.Line, known)
		}
	}
	for name, sec := range user.sections {
		def, ok := base.sections[name]
		if !ok || sec.node.Kind != yaml.MappingNode {
			continue // a backend's own section, decoded strictly by it, or one of a package not imported
		}
		var keys []string
		if def.node.Kind == yaml.MappingNode {
			for i := 0; i < len(def.node.Content); i += 2 {
				keys = append(keys, def.node.Content[i].Value)
			}
		}
		for i := 0; i+1 < len(sec.node.Content); i += 2 {
			k := sec.node.Content[i]
			if !slices.Contains(keys, k.Value) {
				return unknownKey("cluster."+name, k.Value, user.source, k.Line, keys)
			}
		}
	}
	return nil
}

// ErrUnknownEnv is wrapped by the ConfigError for an environment variable
// named like herd's (SW_CLUSTER or SW_CLUSTER_…) that no key reads: most
// often a misspelling (SW_CLUSTER_GOSSIP_SEED for …_SEEDS) that would
// otherwise leave the setting at its default without a word.
var ErrUnknownEnv = errors.New("unknown environment variable")

// checkEnv refuses a SW_CLUSTER variable in environ that no placeholder
// reads (read: the variables the documents' placeholders named), naming
// the nearest one that some placeholder does.
func checkEnv(environ []string, read map[string]bool) error {
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if (name == "SW_CLUSTER" || strings.HasPrefix(name, "SW_CLUSTER_")) && !read[name] && !ofSectionNotImported(name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	var ours []string
	for _, k := range slices.Sorted(maps.Keys(read)) {
		if strings.HasPrefix(k, "SW_CLUSTER") {
			ours = append(ours, k)
		}
	}
	accepted := "no key reads it; unset it, or use one of " + strings.Join(ours, ", ")
	if near := suggest.Nearest(unknown[0], ours); near != "" {
		accepted = "did you mean " + near + "? (no key reads " + unknown[0] + "; unset it or rename it)"
	}
	return &ConfigError{EnvVar: unknown[0], Accepted: accepted, Err: ErrUnknownEnv}
}

// ofSectionNotImported reports whether name is a variable of a section herd
// ships whose package this program does not import (see shippedEnv).
func ofSectionNotImported(name string) bool {
	for section, prefix := range shippedEnv {
		if strings.HasPrefix(name, prefix) && shippedButAbsent(section) {
			return true
		}
	}
	return false
}

func unknownKey(parent, key, file string, line int, known []string) *ConfigError {
	accepted := parent + " has " + strings.Join(known, ", ")
	if len(known) == 0 {
		accepted = parent + " takes no keys"
	}
	if near := suggest.Nearest(key, known); near != "" {
		accepted = "did you mean " + parent + "." + near + "? (" + accepted + ")"
	}
	return &ConfigError{Key: parent + "." + key, Accepted: accepted, File: file, Line: line, Err: ErrUnknownKey}
}

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// substitute replaces ${NAME:default} placeholders in every scalar below n.
// A scalar that is exactly one placeholder takes the YAML type of its result,
// as SkyWalking does, so ${X:false} is a bool, ${X:-1} an int and ${X:""} an
// empty string; a placeholder inside longer text always yields a string.
func (c *Config) substitute(n *yaml.Node, path, source string) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := c.substitute(n.Content[i+1], path+"."+n.Content[i].Value, source); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, child := range n.Content {
			if err := c.substitute(child, fmt.Sprintf("%s[%d]", path, i), source); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return nil
		}
		out, whole, fromEnv, err := expand(n.Value, c.lookup)
		if err != nil {
			return &ConfigError{Key: path, Value: n.Value, Accepted: "placeholders of the form ${NAME} or ${NAME:default}", File: source, Line: n.Line, Err: err}
		}
		n.Style = 0
		n.Tag = "!!str"
		n.Value = out
		if fromEnv != "" {
			c.origins[n] = fromEnv
		}
		if whole {
			retype(n)
		}
	}
	return nil
}

// retype resolves a substituted scalar's value as a plain YAML scalar.
func retype(n *yaml.Node) {
	if strings.TrimSpace(n.Value) == "" {
		n.Value = ""
		return
	}
	var v yaml.Node
	if err := yaml.Unmarshal([]byte(n.Value), &v); err != nil || len(v.Content) != 1 || v.Content[0].Kind != yaml.ScalarNode {
		return // not a lone scalar (e.g. "a: b"): keep it as the literal string
	}
	s := v.Content[0]
	n.Value, n.Tag = s.Value, s.Tag
	if s.Tag == "!!null" {
		n.Value, n.Tag = "", "!!str"
	}
}

// expand substitutes every placeholder in s. whole reports whether s was a
// single placeholder and nothing else; fromEnv names the variables that were
// set in the environment and used.
func expand(s string, lookup LookupEnv) (out string, whole bool, fromEnv string, err error) {
	var b strings.Builder
	var used []string
	rest := s
	count := 0
	for {
		start := strings.Index(rest, "${")
		if start < 0 {
			b.WriteString(rest)
			break
		}
		end := strings.IndexByte(rest[start:], '}')
		if end < 0 {
			return "", false, "", errors.New("unterminated ${")
		}
		end += start
		body := rest[start+2 : end]
		name, def, _ := strings.Cut(body, ":")
		name = strings.TrimSpace(name)
		if name == "" {
			return "", false, "", errors.New("empty variable name in ${}")
		}
		b.WriteString(rest[:start])
		if v, ok := lookup(name); ok {
			b.WriteString(v)
			used = append(used, name)
		} else {
			b.WriteString(def)
		}
		count++
		rest = rest[end+1:]
	}
	whole = count == 1 && strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}")
	return b.String(), whole, strings.Join(used, ", "), nil
}

// Section is one backend's part of the configuration, e.g. cluster.etcd.
type Section struct {
	name string
	at   located
	cfg  *Config
}

// Section returns the configuration section of the named backend. A
// section the configuration does not have is empty: decoding it leaves the
// backend's defaults.
func (c *Config) Section(name string) Section {
	return Section{name: name, at: c.sections[name], cfg: c}
}

// locate completes a *ConfigError that a backend built about one of this
// section's keys with what only the loaded configuration knows: the
// environment variable that set the value, and its file and line.
func (s Section) locate(err error) {
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.EnvVar != "" || ce.File != "" || s.at.node == nil || s.at.node.Kind != yaml.MappingNode {
		return
	}
	key, ok := strings.CutPrefix(ce.Key, "cluster."+s.name+".")
	if !ok {
		return
	}
	if v := mappingValue(s.at.node, key); v != nil {
		located := s.cfg.errorAt(located{v, s.at.file}, ce.Key, ce.Value, ce.Accepted, ce.Err)
		ce.EnvVar, ce.File, ce.Line = located.EnvVar, located.File, located.Line
	}
}

// Name is the backend name, e.g. etcd.
func (s Section) Name() string { return s.name }

// Key returns the full YAML path of a key in this section, for messages.
func (s Section) Key(key string) string { return "cluster." + s.name + "." + key }

// Decode fills v, a pointer to a struct with yaml tags, from the section.
// A key v does not declare is an error, so a misspelt setting is not
// ignored, and so is a value of the wrong type; both are *ConfigError
// naming the key, the value, the environment variable that set it, and the
// file and line.
func (s Section) Decode(v any) error { return s.decode(v, true) }
