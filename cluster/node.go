package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Address is where a node's peers reach its remote (gRPC) server. It is the
// advertised address, which may differ from the address the server binds.
type Address struct {
	Host string
	Port int
}

// String returns host:port, bracketing IPv6 hosts.
func (a Address) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// ParseAddress parses "host:port", where host is an IP address or a DNS
// name and port a number from 1 to 65535.
func ParseAddress(s string) (Address, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Address{}, fmt.Errorf("address %q: want host:port: %w", s, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return Address{}, fmt.Errorf("address %q: port %q is not a number from 1 to 65535", s, port)
	}
	if err := checkHostSyntax(host); err != nil {
		return Address{}, fmt.Errorf("address %q: %w", s, err)
	}
	return Address{Host: host, Port: p}, nil
}

// ParseAddressList parses a comma-separated list of host:port, as the
// backends' server settings take it. It fails on an empty list.
func ParseAddressList(s string) ([]Address, error) {
	var out []Address
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		a, err := ParseAddress(item)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("the list is empty")
	}
	return out, nil
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

// MetaState is the metadata key under which herd says what state a node is
// in, and StateLeaving the value a node carries while it leaves gracefully:
// its coordinator's Close writes it (on backends that can update an entry)
// just before deregistering, so that peers tell a graceful leave from a
// node that vanished (see remote.WithProtection). Keys that begin with
// "herd-" are herd's; do not set them yourself. (The key has no dot because
// Consul takes only letters, digits, "-" and "_" in service metadata keys.)
const (
	MetaState    = "herd-state"
	StateLeaving = "leaving"
)

// Leaving reports whether n carries the mark of a graceful leave.
func (n Node) Leaving() bool { return n.Meta[MetaState] == StateLeaving }

// nodeJSON is a Node's JSON shape, the one herd's reports give members
// (inspect.Member) and the herd command prints: lower-case names, the
// address both whole and split.
type nodeJSON struct {
	ID      string            `json:"id"`
	Address string            `json:"address"`
	Host    string            `json:"host"`
	Port    int               `json:"port"`
	Meta    map[string]string `json:"meta,omitempty"`
	Self    bool              `json:"self"`
}

// MarshalJSON writes n as {"id", "address" ("host:port"), "host", "port",
// "meta", "self"}, the shape of the members in herd's reports.
func (n Node) MarshalJSON() ([]byte, error) {
	return json.Marshal(nodeJSON{ID: n.ID, Address: n.Address.String(), Host: n.Address.Host, Port: n.Address.Port, Meta: n.Meta, Self: n.Self})
}

// UnmarshalJSON reads what MarshalJSON writes; "host" and "port" win over
// "address", which is parsed when they are absent.
func (n *Node) UnmarshalJSON(data []byte) error {
	var j nodeJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	addr := Address{Host: j.Host, Port: j.Port}
	if addr.Host == "" && j.Address != "" {
		var err error
		if addr, err = ParseAddress(j.Address); err != nil {
			return fmt.Errorf("cluster: node %q: %w", j.ID, err)
		}
	}
	*n = Node{ID: j.ID, Address: addr, Meta: j.Meta, Self: j.Self}
	return nil
}

// ErrUnspecifiedHost is wrapped by the error Node.Validate returns when the
// advertised host is empty or a wildcard such as 0.0.0.0 or ::.
var ErrUnspecifiedHost = errors.New("advertised host is empty or a wildcard address that peers cannot dial")

// MaxIDLength is the longest node ID accepted: a Kubernetes pod name's limit.
const MaxIDLength = 253

// Validate reports whether n can be registered: a valid ID (see CheckID), a
// port in range and a host that peers can dial (see CheckHost).
func (n Node) Validate() error {
	if err := CheckID(n.ID); err != nil {
		return fmt.Errorf("cluster: %w; set cluster.nodeId (SW_CLUSTER_NODE_ID), or leave it empty to have one generated", err)
	}
	if n.Address.Port < 1 || n.Address.Port > 65535 {
		return fmt.Errorf("cluster: node %s: advertised port %d is out of range 1-65535; set cluster.<backend>.internalComPort (SW_CLUSTER_INTERNAL_COM_PORT)", n.ID, n.Address.Port)
	}
	if err := CheckHost(n.Address.Host); err != nil {
		return fmt.Errorf("cluster: node %s: %w; set cluster.<backend>.internalComHost (SW_CLUSTER_INTERNAL_COM_HOST) to an IP or host name peers can reach", n.ID, err)
	}
	return nil
}

// CheckID reports whether id can name a node in every backend (an etcd key,
// a znode, a Consul service ID, a pod name): 1 to MaxIDLength ASCII letters,
// digits, '.', '_' or '-', starting with a letter or digit.
func CheckID(id string) error {
	if id == "" {
		return errors.New("node ID is empty")
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("node ID %.20q… is %d bytes long; the limit is %d", id, len(id), MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("node ID %q: want ASCII letters, digits, '.', '_' or '-', starting with a letter or digit", id)
		}
	}
	return nil
}

// CheckHost reports whether peers can dial host: an IP address that is not
// a wildcard, or a DNS name (labels of letters, digits, '-' and '_', joined
// by dots; no scheme, port, path or spaces). Errors for an empty or wildcard
// host wrap ErrUnspecifiedHost.
func CheckHost(host string) error {
	if host == "" {
		return fmt.Errorf("%w (it is empty)", ErrUnspecifiedHost)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return fmt.Errorf("%w (%s)", ErrUnspecifiedHost, host)
	}
	return checkHostSyntax(host)
}

// checkHostSyntax accepts an IP address or a DNS name.
func checkHostSyntax(host string) error {
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	name := strings.TrimSuffix(host, ".")
	ok := len(name) > 0 && len(name) <= 253
	for _, label := range strings.Split(name, ".") {
		ok = ok && validLabel(label)
	}
	if !ok {
		return fmt.Errorf("host %q is not an IP address or a DNS name (want only the host: no scheme, port, path or spaces)", host)
	}
	return nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NewID returns a random node ID (128 bits, hex).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:])
}
