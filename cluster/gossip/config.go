package gossip

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// Config is the cluster.gossip section. Apache SkyWalking has no such
// backend, so every key is herd's own.
type Config struct {
	// Seeds is a comma-separated list of host:port gossip addresses of other
	// nodes (SW_CLUSTER_GOSSIP_SEEDS). Empty starts a cluster of one that
	// others join through this node. Names are resolved again at every
	// join attempt, so a seed that moves is found.
	Seeds string `yaml:"seeds"`
	// BindAddr and BindPort are where the gossip protocol listens, UDP and
	// TCP on the same port (SW_CLUSTER_GOSSIP_BIND_ADDR,
	// SW_CLUSTER_GOSSIP_BIND_PORT). Port 0 picks a free one.
	BindAddr string `yaml:"bindAddr"`
	BindPort int    `yaml:"bindPort"`
	// AdvertiseAddr and AdvertisePort are the gossip address other nodes
	// use (SW_CLUSTER_GOSSIP_ADVERTISE_ADDR, SW_CLUSTER_GOSSIP_ADVERTISE_PORT):
	// empty and 0 mean the bind address and port, or, when binding to a
	// wildcard, the host's first private IP. The remote gRPC address is
	// separate: it travels in the node entry.
	AdvertiseAddr string `yaml:"advertiseAddr"`
	AdvertisePort int    `yaml:"advertisePort"`
	// Profile picks memberlist's timing (SW_CLUSTER_GOSSIP_PROFILE): "lan"
	// (probe every 1s, gossip every 200ms), "wan" (probe every 5s, gossip
	// every 500ms) or "local" (loopback or one host: probe every 1s,
	// gossip every 100ms, short timeouts).
	Profile string `yaml:"profile"`
	// ClusterName labels every packet (SW_CLUSTER_GOSSIP_CLUSTER_NAME);
	// nodes with another name drop them, so two clusters sharing a network
	// or a stale seed list never merge.
	ClusterName string `yaml:"clusterName"`
	// Keys are AES keys, base64 of 16, 24 or 32 bytes, comma-separated
	// (SW_CLUSTER_GOSSIP_KEYS). With keys, gossip is encrypted with the
	// first and accepted with any of them; see docs/backends/gossip.md for rotation.
	Keys string `yaml:"keys"`
	// KeyFile holds more keys, one base64 key per line (SW_CLUSTER_GOSSIP_KEY_FILE).
	// Its first key is the primary when Keys is empty.
	KeyFile string `yaml:"keyFile"`
	// RejoinInterval is how often the seeds are joined again after the first
	// join (SW_CLUSTER_GOSSIP_REJOIN_INTERVAL): it heals a partition both
	// sides gave up on, and finds seeds whose names now resolve elsewhere.
	RejoinInterval time.Duration `yaml:"rejoinInterval"`
	// LeaveTimeout bounds the graceful leave on Close (SW_CLUSTER_GOSSIP_LEAVE_TIMEOUT).
	LeaveTimeout time.Duration `yaml:"leaveTimeout"`
	// Transport, when set, carries the gossip instead of memberlist's UDP
	// and TCP listeners on BindAddr:BindPort (for example a transport over
	// another network, or one a test can cut). Set in code only.
	Transport memberlist.Transport `yaml:"-"`
}

// DefaultConfig returns the values of herd's built-in configuration.
func DefaultConfig() Config {
	return Config{
		BindAddr:       "0.0.0.0",
		BindPort:       7946,
		Profile:        "lan",
		ClusterName:    "herd",
		RejoinInterval: 30 * time.Second,
		LeaveTimeout:   5 * time.Second,
	}
}

func key(k string) string { return "cluster.gossip." + k }

// check validates the configuration and returns what it parsed: the seed
// list and the keyring's keys (read from KeyFile once, here).
func (c Config) check() (seeds []string, keys [][]byte, err error) {
	if seeds, err = c.seeds(); err != nil {
		return nil, nil, err
	}
	if c.BindAddr == "" || net.ParseIP(c.BindAddr) == nil {
		return nil, nil, &cluster.ConfigError{Key: key("bindAddr"), Value: c.BindAddr, Accepted: "an IP address to listen on, e.g. 0.0.0.0 (SW_CLUSTER_GOSSIP_BIND_ADDR)"}
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		return nil, nil, &cluster.ConfigError{Key: key("bindPort"), Value: strconv.Itoa(c.BindPort), Accepted: "a port from 0 (any free port) to 65535 (SW_CLUSTER_GOSSIP_BIND_PORT)"}
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return nil, nil, &cluster.ConfigError{Key: key("advertiseAddr"), Value: c.AdvertiseAddr, Accepted: "empty, or the IP address other nodes reach this one's gossip at (SW_CLUSTER_GOSSIP_ADVERTISE_ADDR)"}
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return nil, nil, &cluster.ConfigError{Key: key("advertisePort"), Value: strconv.Itoa(c.AdvertisePort), Accepted: "0 (the bind port) or a port up to 65535 (SW_CLUSTER_GOSSIP_ADVERTISE_PORT)"}
	}
	if profile(c.Profile) == nil {
		return nil, nil, &cluster.ConfigError{Key: key("profile"), Value: c.Profile, Accepted: "lan, wan or local (SW_CLUSTER_GOSSIP_PROFILE)"}
	}
	if c.ClusterName == "" || len(c.ClusterName) > 255 {
		return nil, nil, &cluster.ConfigError{Key: key("clusterName"), Value: c.ClusterName, Accepted: "1 to 255 bytes naming this cluster, the same on every node (SW_CLUSTER_GOSSIP_CLUSTER_NAME)"}
	}
	if keys, err = c.keys(); err != nil {
		return nil, nil, err
	}
	if c.RejoinInterval < time.Second {
		return nil, nil, &cluster.ConfigError{Key: key("rejoinInterval"), Value: c.RejoinInterval.String(), Accepted: "a duration of at least 1s, e.g. 30s (SW_CLUSTER_GOSSIP_REJOIN_INTERVAL)"}
	}
	if c.LeaveTimeout <= 0 {
		return nil, nil, &cluster.ConfigError{Key: key("leaveTimeout"), Value: c.LeaveTimeout.String(), Accepted: "a positive duration, e.g. 5s (SW_CLUSTER_GOSSIP_LEAVE_TIMEOUT)"}
	}
	return seeds, keys, nil
}

// seeds returns the seed addresses as memberlist takes them, checked.
func (c Config) seeds() ([]string, error) {
	list := backend.SplitList(c.Seeds)
	for _, s := range list {
		a, err := cluster.ParseAddress(s)
		if err == nil && a.Port == 0 {
			err = fmt.Errorf("port 0")
		}
		if err != nil {
			return nil, &cluster.ConfigError{Key: key("seeds"), Value: c.Seeds, Accepted: "a comma-separated list of host:port gossip addresses, e.g. 10.0.0.1:7946,seed.example:7946 (SW_CLUSTER_GOSSIP_SEEDS)", Err: err}
		}
	}
	return list, nil
}

// keys returns the keyring's keys, primary first; none means no encryption.
func (c Config) keys() ([][]byte, error) {
	var keys [][]byte
	add := func(where, value, text string) error {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
		if err == nil {
			err = memberlist.ValidateKey(k)
		}
		if err != nil {
			return &cluster.ConfigError{Key: key(where), Value: value, Accepted: "base64 of a 16, 24 or 32-byte AES key, e.g. from `head -c32 /dev/urandom | base64`", Err: err}
		}
		keys = append(keys, k)
		return nil
	}
	for _, k := range backend.SplitList(c.Keys) {
		if err := add("keys", "(hidden)", k); err != nil {
			return nil, err
		}
	}
	if c.KeyFile != "" {
		data, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return nil, &cluster.ConfigError{Key: key("keyFile"), Value: c.KeyFile, Accepted: "a readable file of base64 AES keys, one per line (SW_CLUSTER_GOSSIP_KEY_FILE)", Err: err}
		}
		n := len(keys)
		for _, line := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			if err := add("keyFile", c.KeyFile, line); err != nil {
				return nil, err
			}
		}
		if len(keys) == n {
			return nil, &cluster.ConfigError{Key: key("keyFile"), Value: c.KeyFile, Accepted: "a file holding at least one base64 AES key (SW_CLUSTER_GOSSIP_KEY_FILE)"}
		}
	}
	return keys, nil
}

// profile returns memberlist's timing preset by name, nil for an unknown one.
func profile(name string) *memberlist.Config {
	switch name {
	case "lan":
		return memberlist.DefaultLANConfig()
	case "wan":
		return memberlist.DefaultWANConfig()
	case "local":
		return memberlist.DefaultLocalConfig()
	}
	return nil
}
