package cluster

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns herd's built-in configuration, the one used when no
// file is given. It documents every key and its environment variable.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// ConfigError is a configuration value herd cannot use. It names the key,
// the value found and what would be accepted.
type ConfigError struct {
	Key      string // full YAML path, e.g. cluster.etcd.ttl
	Value    string
	Accepted string
	Err      error // optional underlying cause
}

func (e *ConfigError) Error() string {
	msg := fmt.Sprintf("config: %s = %q is not accepted: want %s", e.Key, e.Value, e.Accepted)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Config is the cluster part of a SkyWalking-style application.yml, after
// ${NAME:default} substitution.
type Config struct {
	// Selector names the backend: standalone, etcd, …
	Selector string
	// NodeID is the configured stable node ID; empty means generate one.
	NodeID   string
	sections map[string]*yaml.Node
}

// LookupEnv resolves the NAME of a ${NAME:default} placeholder.
type LookupEnv func(name string) (value string, ok bool)

type loadOptions struct{ lookup LookupEnv }

// LoadOption changes how configuration is loaded.
type LoadOption func(*loadOptions)

// WithLookupEnv resolves placeholders with lookup instead of os.LookupEnv.
func WithLookupEnv(lookup LookupEnv) LoadOption {
	return func(o *loadOptions) { o.lookup = lookup }
}

// DefaultConfig loads the built-in configuration, so environment variables
// alone (SW_CLUSTER=etcd SW_CLUSTER_ETCD_ENDPOINTS=…) configure herd.
func DefaultConfig(opts ...LoadOption) (*Config, error) { return LoadConfig(nil, opts...) }

// LoadConfigFile reads a YAML file with a top-level cluster key, such as a
// SkyWalking application.yml; other top-level keys are ignored.
func LoadConfigFile(path string, opts ...LoadOption) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := LoadConfig(data, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// LoadConfig parses YAML with a top-level cluster key. With nil data it
// loads the built-in default. A backend section the document leaves out is
// taken from the built-in default, so a file need only name what it changes.
func LoadConfig(data []byte, opts ...LoadOption) (*Config, error) {
	o := loadOptions{lookup: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	base, err := parseCluster(defaultYAML, o.lookup)
	if err != nil {
		return nil, fmt.Errorf("built-in default: %w", err)
	}
	if data == nil {
		return base.build()
	}
	user, err := parseCluster(data, o.lookup)
	if err != nil {
		return nil, err
	}
	for name, n := range base.sections {
		if _, ok := user.sections[name]; !ok {
			user.sections[name] = n
		}
	}
	return user.build()
}

type rawCluster struct {
	selector, nodeID *yaml.Node
	sections         map[string]*yaml.Node
}

func parseCluster(data []byte, lookup LookupEnv) (*rawCluster, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config: not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("config: want a YAML mapping with a top-level cluster key")
	}
	clusterNode := mappingValue(doc.Content[0], "cluster")
	if clusterNode == nil || clusterNode.Kind != yaml.MappingNode {
		return nil, errors.New("config: no cluster section: want a top-level mapping key cluster with at least selector")
	}
	if err := substitute(clusterNode, "cluster", lookup); err != nil {
		return nil, err
	}
	raw := &rawCluster{sections: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(clusterNode.Content); i += 2 {
		key, val := clusterNode.Content[i].Value, clusterNode.Content[i+1]
		switch key {
		case "selector":
			raw.selector = val
		case "nodeId":
			raw.nodeID = val
		default:
			raw.sections[key] = val
		}
	}
	return raw, nil
}

func (r *rawCluster) build() (*Config, error) {
	cfg := &Config{Selector: "standalone", sections: r.sections}
	if r.selector != nil && r.selector.Value != "" {
		cfg.Selector = r.selector.Value
	}
	if r.nodeID != nil && r.nodeID.Tag != "!!null" {
		cfg.NodeID = r.nodeID.Value
	}
	return cfg, nil
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
func substitute(n *yaml.Node, path string, lookup LookupEnv) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := substitute(n.Content[i+1], path+"."+n.Content[i].Value, lookup); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := substitute(c, fmt.Sprintf("%s[%d]", path, i), lookup); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return nil
		}
		out, whole, err := expand(n.Value, lookup)
		if err != nil {
			return &ConfigError{Key: path, Value: n.Value, Accepted: "placeholders of the form ${NAME} or ${NAME:default}", Err: err}
		}
		n.Style = 0
		n.Tag = "!!str"
		n.Value = out
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
// single placeholder and nothing else.
func expand(s string, lookup LookupEnv) (out string, whole bool, err error) {
	var b strings.Builder
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
			return "", false, errors.New("unterminated ${")
		}
		end += start
		body := rest[start+2 : end]
		name, def, _ := strings.Cut(body, ":")
		name = strings.TrimSpace(name)
		if name == "" {
			return "", false, errors.New("empty variable name in ${}")
		}
		b.WriteString(rest[:start])
		if v, ok := lookup(name); ok {
			b.WriteString(v)
		} else {
			b.WriteString(def)
		}
		count++
		rest = rest[end+1:]
	}
	whole = count == 1 && strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}")
	return b.String(), whole, nil
}

// SplitList splits a comma-separated setting such as "a:1, b:2" into its
// trimmed, non-empty items.
func SplitList(s string) []string {
	var items []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// Section is one backend's part of the configuration, e.g. cluster.etcd.
type Section struct {
	name string
	node *yaml.Node
}

// Section returns the configuration section of the named backend.
func (c *Config) Section(name string) (Section, error) {
	n, ok := c.sections[name]
	if !ok {
		return Section{}, &ConfigError{Key: "cluster." + name, Value: "", Accepted: "a mapping with the " + name + " backend's settings (see DefaultYAML)"}
	}
	return Section{name: name, node: n}, nil
}

// Name is the backend name, e.g. etcd.
func (s Section) Name() string { return s.name }

// Key returns the full YAML path of a key in this section, for messages.
func (s Section) Key(key string) string { return "cluster." + s.name + "." + key }

// Decode fills v (a pointer to a struct with yaml tags) from the section.
// A key v does not declare is an error, so a misspelt setting is not ignored.
func (s Section) Decode(v any) error {
	if s.node == nil || s.node.Tag == "!!null" {
		return nil
	}
	data, err := yaml.Marshal(s.node)
	if err != nil {
		return fmt.Errorf("config: cluster.%s: %w", s.name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("config: cluster.%s: %w", s.name, err)
	}
	return nil
}

// advertised holds the settings every backend section may carry, by
// SkyWalking's names, to override the address peers dial.
type advertised struct {
	InternalComHost string `yaml:"internalComHost"`
	InternalComPort int    `yaml:"internalComPort"`
}

// SelfNode returns the local node for the selected backend: its ID is
// NodeID (or a new random one), and its address is bindAddr (host:port the
// remote server listens on) overridden by the section's internalComHost and
// internalComPort. A wildcard or empty advertised host is refused with an
// error that names the setting to fix.
func (c *Config) SelfNode(bindAddr string) (Node, error) {
	var adv advertised
	if n := c.sections[c.Selector]; n != nil && n.Kind == yaml.MappingNode {
		// Only the two keys are read here; the backend decodes the rest strictly.
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			switch k {
			case "internalComHost":
				adv.InternalComHost = v.Value
			case "internalComPort":
				p, err := strconv.Atoi(v.Value)
				if err != nil {
					return Node{}, &ConfigError{Key: "cluster." + c.Selector + ".internalComPort", Value: v.Value, Accepted: "a port number, or -1 to use the bind port"}
				}
				adv.InternalComPort = p
			}
		}
	}
	host, portStr, err := net.SplitHostPort(bindAddr)
	if err != nil {
		return Node{}, fmt.Errorf("cluster: bind address %q: want host:port: %w", bindAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return Node{}, fmt.Errorf("cluster: bind address %q: port is not a number", bindAddr)
	}
	if adv.InternalComHost != "" {
		host = adv.InternalComHost
	}
	if adv.InternalComPort > 0 {
		port = adv.InternalComPort
	} else if adv.InternalComPort != -1 && adv.InternalComPort != 0 {
		return Node{}, &ConfigError{Key: "cluster." + c.Selector + ".internalComPort", Value: strconv.Itoa(adv.InternalComPort), Accepted: "a port number from 1 to 65535, or -1 to use the bind port"}
	}
	if port < 1 || port > 65535 {
		return Node{}, &ConfigError{Key: "cluster." + c.Selector + ".internalComPort", Value: strconv.Itoa(port), Accepted: "a port from 1 to 65535: the bind address has no usable port, so set internalComPort (SW_CLUSTER_INTERNAL_COM_PORT)"}
	}
	if isUnspecified(host) {
		return Node{}, &ConfigError{
			Key:      "cluster." + c.Selector + ".internalComHost",
			Value:    host,
			Accepted: fmt.Sprintf("an IP or host name that peers can reach: the bind address %q is a wildcard, so set internalComHost (SW_CLUSTER_INTERNAL_COM_HOST)", bindAddr),
			Err:      ErrUnspecifiedHost,
		}
	}
	id := c.NodeID
	if id == "" {
		id = NewID()
	}
	return Node{ID: id, Address: Address{Host: host, Port: port}}, nil
}
