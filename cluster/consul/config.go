package consul

import (
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// Config is the cluster.consul section. Keys and environment variables follow
// Apache SkyWalking's; datacenter, the check settings, waitTime, timeout and
// the TLS files are herd's own.
type Config struct {
	// ServiceName is the Consul service every node registers (SW_SERVICE_NAME).
	ServiceName string `yaml:"serviceName"`
	// HostPort is a comma-separated list of agents, host:port
	// (SW_CLUSTER_CONSUL_HOST_PORT). herd talks to the first that answers and
	// moves to the next when it stops answering.
	HostPort string `yaml:"hostPort"`
	// ACLToken is sent with every request (SW_CLUSTER_CONSUL_ACLTOKEN).
	ACLToken string `yaml:"aclToken"`
	// Datacenter to register in and query; empty means the agent's (SW_CLUSTER_CONSUL_DATACENTER).
	Datacenter string `yaml:"datacenter"`
	// CheckTTL is the TTL of the health check herd keeps passing, every CheckTTL/3 (SW_CLUSTER_CONSUL_CHECK_TTL).
	CheckTTL time.Duration `yaml:"checkTtl"`
	// DeregisterCriticalServiceAfter lets Consul reap a node that died without
	// deregistering; Consul's minimum is 1m (SW_CLUSTER_CONSUL_DEREGISTER_AFTER).
	DeregisterCriticalServiceAfter time.Duration `yaml:"deregisterCriticalServiceAfter"`
	// WaitTime bounds one blocking query (SW_CLUSTER_CONSUL_WAIT_TIME).
	WaitTime time.Duration `yaml:"waitTime"`
	// Timeout bounds ordinary requests and the start-up check (SW_CLUSTER_CONSUL_TIMEOUT).
	Timeout time.Duration `yaml:"timeout"`
	// ElectionTTL is the TTL of each campaign's Consul session, 10s to 24h
	// (SW_CLUSTER_CONSUL_ELECTION_TTL). Consul keeps a session it stopped
	// hearing from for up to twice its TTL, so a crashed leader is replaced
	// after 2 × TTL + ElectionLockDelay at most.
	ElectionTTL time.Duration `yaml:"electionTTL"`
	// ElectionLockDelay is the session's lock-delay: after a leader's
	// session is invalidated, nobody may take the key for this long
	// (SW_CLUSTER_CONSUL_ELECTION_LOCK_DELAY).
	ElectionLockDelay time.Duration `yaml:"electionLockDelay"`
	TLSCAFile         string        `yaml:"tlsCaFile"`
	TLSCertFile       string        `yaml:"tlsCertFile"`
	TLSKeyFile        string        `yaml:"tlsKeyFile"`
}

// DefaultConfig returns the values of herd's built-in configuration.
func DefaultConfig() Config {
	return Config{
		ServiceName:                    "SkyWalking_OAP_Cluster",
		HostPort:                       "localhost:8500",
		CheckTTL:                       10 * time.Second,
		DeregisterCriticalServiceAfter: time.Minute,
		WaitTime:                       time.Minute,
		Timeout:                        5 * time.Second,
		ElectionTTL:                    10 * time.Second,
		ElectionLockDelay:              time.Second,
	}
}

func key(k string) string { return "cluster.consul." + k }

func (c Config) hosts() []string { return backend.SplitList(c.HostPort) }

func (c Config) validate() error {
	if _, err := cluster.ParseAddressList(c.HostPort); err != nil {
		return &cluster.ConfigError{Key: key("hostPort"), Value: c.HostPort, Accepted: "a comma-separated list of agent host:port (SW_CLUSTER_CONSUL_HOST_PORT)", Err: err}
	}
	if c.ServiceName == "" {
		return &cluster.ConfigError{Key: key("serviceName"), Value: "", Accepted: "a non-empty Consul service name (SW_SERVICE_NAME)"}
	}
	if c.CheckTTL < time.Second {
		return &cluster.ConfigError{Key: key("checkTtl"), Value: c.CheckTTL.String(), Accepted: "a duration of at least 1s, e.g. 10s (SW_CLUSTER_CONSUL_CHECK_TTL)"}
	}
	if c.DeregisterCriticalServiceAfter < time.Minute {
		return &cluster.ConfigError{Key: key("deregisterCriticalServiceAfter"), Value: c.DeregisterCriticalServiceAfter.String(), Accepted: "a duration of at least 1m, Consul's minimum (SW_CLUSTER_CONSUL_DEREGISTER_AFTER)"}
	}
	if c.WaitTime < time.Second || c.WaitTime > 10*time.Minute {
		return &cluster.ConfigError{Key: key("waitTime"), Value: c.WaitTime.String(), Accepted: "a duration from 1s to 10m (SW_CLUSTER_CONSUL_WAIT_TIME)"}
	}
	if c.Timeout <= 0 {
		return &cluster.ConfigError{Key: key("timeout"), Value: c.Timeout.String(), Accepted: "a positive duration, e.g. 5s (SW_CLUSTER_CONSUL_TIMEOUT)"}
	}
	if c.ElectionTTL < 10*time.Second || c.ElectionTTL > 24*time.Hour {
		return &cluster.ConfigError{Key: key("electionTTL"), Value: c.ElectionTTL.String(), Accepted: "a duration from 10s to 24h, Consul's session TTL range (SW_CLUSTER_CONSUL_ELECTION_TTL)"}
	}
	if c.ElectionLockDelay < 0 || c.ElectionLockDelay > time.Minute {
		return &cluster.ConfigError{Key: key("electionLockDelay"), Value: c.ElectionLockDelay.String(), Accepted: "a duration from 0 to 60s (SW_CLUSTER_CONSUL_ELECTION_LOCK_DELAY)"}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return &cluster.ConfigError{Key: key("tlsCertFile"), Value: c.TLSCertFile, Accepted: "tlsCertFile and tlsKeyFile set together, or neither"}
	}
	return nil
}
