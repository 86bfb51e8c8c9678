package cluster

import (
	"fmt"
	"net"
	"strconv"

	"gopkg.in/yaml.v3"
)

// advertised holds the settings every backend section may carry, by
// SkyWalking's names, to override the address peers dial.
type advertised struct {
	InternalComHost string `yaml:"internalComHost"`
	InternalComPort int    `yaml:"internalComPort"`
}

// SelfNode returns the local node for the selected backend: its ID is
// NodeID (or a new random one), and its address is bindAddr (the host:port
// the remote server listens on, e.g. lis.Addr().String()) overridden by the
// section's internalComHost and internalComPort. Every configuration
// mistake is a *ConfigError naming the setting to fix: a wildcard or malformed host, a
// port out of range, a bind address with port 0, an invalid node ID.
func (c *Config) SelfNode(bindAddr string) (Node, error) {
	var adv advertised
	sec := c.Section(c.Backend)
	if err := sec.decode(&adv, false); err != nil {
		return Node{}, err
	}
	hostKey, portKey := "cluster."+c.Backend+".internalComHost", "cluster."+c.Backend+".internalComPort"
	at := func(key string) located { // where a key of the section is, for messages
		if n := sec.at.node; n != nil && n.Kind == yaml.MappingNode {
			if v := mappingValue(n, key); v != nil {
				return located{v, sec.at.file}
			}
		}
		return located{}
	}

	host, portStr, err := net.SplitHostPort(bindAddr)
	if err != nil {
		return Node{}, fmt.Errorf("cluster: bind address %q: want host:port, such as lis.Addr().String(): %w", bindAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return Node{}, fmt.Errorf("cluster: bind address %q: port %q is not a number from 0 to 65535", bindAddr, portStr)
	}

	switch p := adv.InternalComPort; {
	case p >= 1 && p <= 65535:
		port = p
	case p == -1 || p == 0:
		if port == 0 {
			return Node{}, c.errorAt(at("internalComPort"), portKey, strconv.Itoa(p),
				fmt.Sprintf("a port from 1 to 65535 (SW_CLUSTER_INTERNAL_COM_PORT): -1 means the bind port, and the bind address %q has port 0; pass the address the server actually listens on, or set internalComPort", bindAddr), nil)
		}
	default:
		return Node{}, c.errorAt(at("internalComPort"), portKey, strconv.Itoa(p),
			"a port from 1 to 65535, or -1 to use the bind port (SW_CLUSTER_INTERNAL_COM_PORT)", nil)
	}

	if adv.InternalComHost != "" {
		if err := CheckHost(adv.InternalComHost); err != nil {
			return Node{}, c.errorAt(at("internalComHost"), hostKey, adv.InternalComHost,
				"an IP or DNS name that peers can reach (SW_CLUSTER_INTERNAL_COM_HOST)", err)
		}
		host = adv.InternalComHost
	} else if err := CheckHost(host); err != nil {
		return Node{}, &ConfigError{Key: hostKey, Value: "",
			Accepted: fmt.Sprintf("an IP or DNS name that peers can reach: it is empty, so the bind address's host is used, and the bind address %q cannot be dialled; set internalComHost (SW_CLUSTER_INTERNAL_COM_HOST)", bindAddr),
			Err:      err}
	}

	id := c.NodeID
	if id == "" {
		id = NewID()
	} else if err := CheckID(id); err != nil {
		return Node{}, c.errorAt(c.nodeID, "cluster.nodeId", id, "a stable node ID (SW_CLUSTER_NODE_ID), or empty to generate one", err)
	}
	return Node{ID: id, Address: Address{Host: host, Port: port}}, nil
}
