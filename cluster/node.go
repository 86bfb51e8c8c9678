package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Address is where a node's peers reach its remote (gRPC) server. It is the
// advertised address, which may differ from the address the server binds.
type Address struct {
	Host string
	Port int
}

// String returns host:port, bracketing IPv6 hosts.
func (a Address) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// ParseAddress parses "host:port".
func ParseAddress(s string) (Address, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Address{}, fmt.Errorf("address %q: want host:port: %w", s, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return Address{}, fmt.Errorf("address %q: port %q is not a number from 1 to 65535", s, port)
	}
	return Address{Host: host, Port: p}, nil
}

// Node is one member of the cluster.
type Node struct {
	// ID identifies the node for its whole life, independent of its address,
	// so a node that moves or restarts on a new port is still the same member.
	ID string
	// Address is the advertised address peers dial.
	Address Address
	// Meta is optional metadata carried to every peer.
	Meta map[string]string
	// Self is true in a view for the node that this process registered.
	// It is set by the coordinator and never stored in a backend.
	Self bool
}

// ErrUnspecifiedHost is wrapped by the error Node.Validate returns when the
// advertised host is empty or a wildcard such as 0.0.0.0 or ::.
var ErrUnspecifiedHost = errors.New("advertised host is empty or a wildcard address that peers cannot dial")

// Validate reports whether n can be registered: a non-empty ID, a port in
// range and a host that peers can dial.
func (n Node) Validate() error {
	if n.ID == "" {
		return errors.New("cluster: node has an empty ID; set cluster.nodeId (SW_CLUSTER_NODE_ID) or leave it empty in the config to have one generated")
	}
	if n.Address.Port < 1 || n.Address.Port > 65535 {
		return fmt.Errorf("cluster: node %s: advertised port %d is out of range 1-65535; set cluster.<backend>.internalComPort (SW_CLUSTER_INTERNAL_COM_PORT)", n.ID, n.Address.Port)
	}
	if isUnspecified(n.Address.Host) {
		return fmt.Errorf("cluster: node %s: %w (%q); set cluster.<backend>.internalComHost (SW_CLUSTER_INTERNAL_COM_HOST) to an IP or host name peers can reach", n.ID, ErrUnspecifiedHost, n.Address.Host)
	}
	return nil
}

func isUnspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// NewID returns a random node ID (128 bits, hex).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:])
}

// wireNode is the JSON form backends store. Field names are part of the
// storage format shared by every herd version: change them only additively.
type wireNode struct {
	ID   string            `json:"id"`
	Host string            `json:"host"`
	Port int               `json:"port"`
	Meta map[string]string `json:"meta,omitempty"`
}

// EncodeNode returns the JSON payload a backend stores for n.
func EncodeNode(n Node) ([]byte, error) {
	return json.Marshal(wireNode{ID: n.ID, Host: n.Address.Host, Port: n.Address.Port, Meta: n.Meta})
}

// DecodeNode parses a payload written by EncodeNode and validates it, so that
// an entry someone else wrote into herd's backend path is rejected rather
// than dialled.
func DecodeNode(data []byte) (Node, error) {
	var w wireNode
	if err := json.Unmarshal(data, &w); err != nil {
		return Node{}, fmt.Errorf("cluster: malformed node entry: %w", err)
	}
	n := Node{ID: w.ID, Address: Address{Host: w.Host, Port: w.Port}, Meta: w.Meta}
	if err := n.Validate(); err != nil {
		return Node{}, fmt.Errorf("cluster: invalid node entry: %w", err)
	}
	return n, nil
}
