package nacos

import (
	"os"
	"path/filepath"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/cluster/backend/leaserecord"
)

// Config is the cluster.nacos section. Keys and environment variables follow
// Apache SkyWalking's; group, clusterName, the directories and timeout are
// herd's own.
type Config struct {
	ServiceName string `yaml:"serviceName"` // SW_SERVICE_NAME
	// HostPort is a comma-separated list of servers, host:port of the HTTP
	// port; the SDK talks gRPC on port+1000 (SW_CLUSTER_NACOS_HOST_PORT).
	HostPort string `yaml:"hostPort"`
	// Namespace ID; "public" and "" both mean the default namespace (SW_CLUSTER_NACOS_NAMESPACE).
	Namespace   string `yaml:"namespace"`
	ContextPath string `yaml:"contextPath"` // SW_CLUSTER_NACOS_CONTEXT_PATH
	Username    string `yaml:"username"`    // SW_CLUSTER_NACOS_USERNAME
	Password    string `yaml:"password"`    // SW_CLUSTER_NACOS_PASSWORD
	AccessKey   string `yaml:"accessKey"`   // SW_CLUSTER_NACOS_ACCESSKEY
	SecretKey   string `yaml:"secretKey"`   // SW_CLUSTER_NACOS_SECRETKEY
	Group       string `yaml:"group"`       // SW_CLUSTER_NACOS_GROUP
	ClusterName string `yaml:"clusterName"` // SW_CLUSTER_NACOS_CLUSTER
	// LogDir and CacheDir are the SDK's; empty means a per-user cache
	// directory (os.UserCacheDir()/herd/nacos), never the working directory.
	LogDir   string `yaml:"logDir"`   // SW_CLUSTER_NACOS_LOG_DIR
	CacheDir string `yaml:"cacheDir"` // SW_CLUSTER_NACOS_CACHE_DIR
	// Timeout bounds each request and start-up (SW_CLUSTER_NACOS_TIMEOUT).
	Timeout time.Duration `yaml:"timeout"`
	// ElectionTTL is an election lease record's TTL (SW_CLUSTER_NACOS_ELECTION_TTL):
	// a crashed leader is replaced within it plus ElectionRenewPeriod, and
	// its Done closes a third of it before anyone can take over.
	ElectionTTL time.Duration `yaml:"electionTTL"`
	// ElectionRenewPeriod is how often the leader renews the record and
	// candidates read it (SW_CLUSTER_NACOS_ELECTION_RENEW_PERIOD).
	ElectionRenewPeriod time.Duration `yaml:"electionRenewPeriod"`
	// SelfCheck is how often herd checks that self is still registered,
	// default 5s. Set in code only.
	SelfCheck time.Duration `yaml:"-"`
}

// DefaultConfig returns the values of herd's built-in configuration.
func DefaultConfig() Config {
	return Config{
		ServiceName:         "SkyWalking_OAP_Cluster",
		HostPort:            "localhost:8848",
		Namespace:           "public",
		Group:               "DEFAULT_GROUP",
		ClusterName:         "DEFAULT",
		Timeout:             5 * time.Second,
		ElectionTTL:         10 * time.Second,
		ElectionRenewPeriod: time.Second,
	}
}

func key(k string) string { return "cluster.nacos." + k }

func (c Config) namespaceID() string {
	if c.Namespace == "public" {
		return ""
	}
	return c.Namespace
}

// dirs returns the SDK's log and cache directories.
func (c Config) dirs() (logDir, cacheDir string) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	base = filepath.Join(base, "herd", "nacos")
	logDir, cacheDir = c.LogDir, c.CacheDir
	if logDir == "" {
		logDir = filepath.Join(base, "log")
	}
	if cacheDir == "" {
		cacheDir = filepath.Join(base, "cache")
	}
	return logDir, cacheDir
}

type server struct {
	host string
	port uint64
}

// selfCheck is SelfCheck, or its default when unset.
func (c Config) selfCheck() time.Duration {
	if c.SelfCheck <= 0 {
		return 5 * time.Second
	}
	return c.SelfCheck
}

func (c Config) servers() ([]server, error) {
	var out []server
	for _, hp := range backend.SplitList(c.HostPort) {
		a, err := cluster.ParseAddress(hp)
		if err != nil {
			return nil, &cluster.ConfigError{Key: key("hostPort"), Value: c.HostPort, Accepted: "a comma-separated list of host:port, the servers' HTTP port (SW_CLUSTER_NACOS_HOST_PORT)", Err: err}
		}
		out = append(out, server{a.Host, uint64(a.Port)})
	}
	if len(out) == 0 {
		return nil, &cluster.ConfigError{Key: key("hostPort"), Value: c.HostPort, Accepted: "a comma-separated list of host:port (SW_CLUSTER_NACOS_HOST_PORT)"}
	}
	return out, nil
}

func (c Config) validate() error {
	if _, err := c.servers(); err != nil {
		return err
	}
	if c.ServiceName == "" {
		return &cluster.ConfigError{Key: key("serviceName"), Value: "", Accepted: "a non-empty service name (SW_SERVICE_NAME)"}
	}
	if c.Group == "" {
		return &cluster.ConfigError{Key: key("group"), Value: "", Accepted: "a group name, e.g. DEFAULT_GROUP (SW_CLUSTER_NACOS_GROUP)"}
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return &cluster.ConfigError{Key: key("accessKey"), Value: "(hidden)", Accepted: "accessKey and secretKey set together, or neither"}
	}
	if c.Timeout <= 0 || c.Timeout > time.Hour {
		return &cluster.ConfigError{Key: key("timeout"), Value: c.Timeout.String(), Accepted: "a positive duration up to 1h (SW_CLUSTER_NACOS_TIMEOUT)"}
	}
	if bad, accepted := leaserecord.CheckTiming(c.ElectionTTL, c.ElectionRenewPeriod); bad != "" {
		value, env := c.ElectionTTL, "SW_CLUSTER_NACOS_ELECTION_TTL"
		if bad == "electionRenewPeriod" {
			value, env = c.ElectionRenewPeriod, "SW_CLUSTER_NACOS_ELECTION_RENEW_PERIOD"
		}
		return &cluster.ConfigError{Key: key(bad), Value: value.String(), Accepted: accepted + " (" + env + ")"}
	}
	return nil
}
