package zookeeper

import (
	"strconv"
	"strings"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// Config is the cluster.zookeeper section. Keys and environment variables
// follow Apache SkyWalking's; root, sessionTimeout and connectTimeout are
// herd's own.
type Config struct {
	// Namespace separates clusters under Root (SW_NAMESPACE).
	Namespace string `yaml:"namespace"`
	// HostPort is a comma-separated list of servers, host:port (SW_CLUSTER_ZK_HOST_PORT).
	HostPort string `yaml:"hostPort"`
	// BaseSleepTimeMs is the first retry delay after an error (SW_CLUSTER_ZK_SLEEP_TIME).
	BaseSleepTimeMs int `yaml:"baseSleepTimeMs"`
	// MaxRetries is accepted for compatibility with SkyWalking's files and
	// otherwise ignored: herd never stops retrying (SW_CLUSTER_ZK_MAX_RETRIES).
	MaxRetries int `yaml:"maxRetries"`
	// EnableACL protects herd's znodes with a digest ACL (SW_ZK_ENABLE_ACL).
	EnableACL bool `yaml:"enableACL"`
	// Schema must be digest, the only scheme SkyWalking supports (SW_ZK_SCHEMA).
	Schema string `yaml:"schema"`
	// Expression is user:password for the digest ACL (SW_ZK_EXPRESSION).
	Expression string `yaml:"expression"`
	// Root is the top znode, SkyWalking's /skywalking (SW_CLUSTER_ZK_ROOT).
	Root string `yaml:"root"`
	// SessionTimeout is asked of the server, which clamps it to 2..20 ticks (SW_CLUSTER_ZK_SESSION_TIMEOUT).
	SessionTimeout time.Duration `yaml:"sessionTimeout"`
	// ConnectTimeout bounds start-up: no session by then is an error (SW_CLUSTER_ZK_CONNECT_TIMEOUT).
	ConnectTimeout time.Duration `yaml:"connectTimeout"`
}

// DefaultConfig returns the values of herd's built-in configuration.
func DefaultConfig() Config {
	return Config{
		HostPort:        "localhost:2181",
		BaseSleepTimeMs: 1000,
		MaxRetries:      3,
		Schema:          "digest",
		Expression:      "skywalking:skywalking",
		Root:            "/skywalking",
		SessionTimeout:  10 * time.Second,
		ConnectTimeout:  10 * time.Second,
	}
}

func key(k string) string { return "cluster.zookeeper." + k }

func (c Config) hosts() []string { return backend.SplitList(c.HostPort) }

// remotePath is /<root>[/<namespace>]/remote, SkyWalking's layout.
func (c Config) remotePath() string {
	p := strings.TrimRight(c.Root, "/")
	if c.Namespace != "" {
		p += "/" + strings.Trim(c.Namespace, "/")
	}
	return p + "/remote"
}

func (c Config) validate() error {
	if _, err := cluster.ParseAddressList(c.HostPort); err != nil {
		return &cluster.ConfigError{Key: key("hostPort"), Value: c.HostPort, Accepted: "a comma-separated list of host:port (SW_CLUSTER_ZK_HOST_PORT)", Err: err}
	}
	if !strings.HasPrefix(c.Root, "/") || strings.HasSuffix(c.Root, "/") && c.Root != "/" {
		return &cluster.ConfigError{Key: key("root"), Value: c.Root, Accepted: "an absolute znode path such as /skywalking (SW_CLUSTER_ZK_ROOT)"}
	}
	if strings.Contains(strings.Trim(c.Namespace, "/"), "/") {
		return &cluster.ConfigError{Key: key("namespace"), Value: c.Namespace, Accepted: "a single path segment without '/' (SW_NAMESPACE)"}
	}
	if c.BaseSleepTimeMs <= 0 {
		return &cluster.ConfigError{Key: key("baseSleepTimeMs"), Value: strconv.Itoa(c.BaseSleepTimeMs), Accepted: "a positive number of milliseconds, e.g. 1000 (SW_CLUSTER_ZK_SLEEP_TIME)"}
	}
	if c.EnableACL {
		if c.Schema != "digest" {
			return &cluster.ConfigError{Key: key("schema"), Value: c.Schema, Accepted: "digest, the only ACL scheme supported (SW_ZK_SCHEMA)"}
		}
		if u, p, ok := strings.Cut(c.Expression, ":"); !ok || u == "" || p == "" {
			return &cluster.ConfigError{Key: key("expression"), Value: "(hidden)", Accepted: "user:password for the digest ACL (SW_ZK_EXPRESSION)"}
		}
	}
	if c.SessionTimeout < time.Second {
		return &cluster.ConfigError{Key: key("sessionTimeout"), Value: c.SessionTimeout.String(), Accepted: "a duration of at least 1s (SW_CLUSTER_ZK_SESSION_TIMEOUT)"}
	}
	if c.ConnectTimeout <= 0 {
		return &cluster.ConfigError{Key: key("connectTimeout"), Value: c.ConnectTimeout.String(), Accepted: "a positive duration (SW_CLUSTER_ZK_CONNECT_TIMEOUT)"}
	}
	return nil
}

// defaultBackoff starts at BaseSleepTimeMs (SkyWalking's setting) and
// doubles to 1s, so that a server that comes back is seen within about a
// second.
func (c Config) defaultBackoff() cluster.Backoff {
	return cluster.Backoff{Initial: time.Duration(c.BaseSleepTimeMs) * time.Millisecond, Max: time.Second}
}
