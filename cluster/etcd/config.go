package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// Config is the cluster.etcd section. Keys and environment variables follow
// Apache SkyWalking's; ttl, dialTimeout and the TLS files are herd's own.
type Config struct {
	// Endpoints is a comma-separated list of host:port (SW_CLUSTER_ETCD_ENDPOINTS).
	Endpoints string `yaml:"endpoints"`
	// Namespace prefixes every key (SW_CLUSTER_ETCD_NAMESPACE), default /skywalking.
	Namespace string `yaml:"namespace"`
	// ServiceName groups the nodes of one cluster (SW_CLUSTER_ETCD_SERVICE_NAME).
	ServiceName string `yaml:"serviceName"`
	// Authentication turns on User and Password (SW_CLUSTER_ETCD_AUTHENTICATION).
	Authentication bool   `yaml:"authentication"`
	User           string `yaml:"user"`
	Password       string `yaml:"password"`
	// TTL of the registration lease, whole seconds, at least 2s (SW_CLUSTER_ETCD_TTL).
	TTL time.Duration `yaml:"ttl"`
	// ElectionTTL is the TTL of each campaign's lease, whole seconds, at
	// least 2s (SW_CLUSTER_ETCD_ELECTION_TTL): a crashed leader is replaced
	// within it, and its Done closes 1s before it runs out.
	ElectionTTL time.Duration `yaml:"electionTTL"`
	// DialTimeout bounds connecting and the start-up reachability check.
	DialTimeout time.Duration `yaml:"dialTimeout"`
	// TLS: a CA to verify the server, and a client certificate and key.
	TLSCAFile   string `yaml:"tlsCaFile"`
	TLSCertFile string `yaml:"tlsCertFile"`
	TLSKeyFile  string `yaml:"tlsKeyFile"`
}

// DefaultConfig returns the values of herd's built-in configuration.
func DefaultConfig() Config {
	return Config{
		Endpoints:   "localhost:2379",
		Namespace:   "/skywalking",
		ServiceName: "SkyWalking_OAP_Cluster",
		TTL:         10 * time.Second,
		ElectionTTL: 10 * time.Second,
		DialTimeout: 5 * time.Second,
	}
}

func key(k string) string { return "cluster.etcd." + k }

// endpoints returns the configured endpoints for the client, and the
// host:port of each TCP one for the start-up probe.
func (c Config) endpoints() (eps, tcp []string, err error) {
	eps = backend.SplitList(c.Endpoints)
	bad := func(err error) error {
		return &cluster.ConfigError{Key: key("endpoints"), Value: c.Endpoints, Accepted: "a comma-separated list of host:port or http(s)://host:port (SW_CLUSTER_ETCD_ENDPOINTS)", Err: err}
	}
	if len(eps) == 0 {
		return nil, nil, bad(nil)
	}
	for i, ep := range eps {
		hostPort := ep
		if scheme, rest, ok := strings.Cut(ep, "://"); ok {
			switch scheme {
			case "unix", "unixs":
				continue // a socket path, nothing to check
			case "http", "https":
				hostPort = strings.TrimSuffix(rest, "/") // a URL's empty path, as copied from a browser
				if slash := strings.IndexByte(hostPort, '/'); slash >= 0 {
					return nil, nil, bad(fmt.Errorf("endpoint %q: etcd takes no path (%q): give %s://host:port", ep, hostPort[slash:], scheme))
				}
				eps[i] = scheme + "://" + hostPort
			default:
				return nil, nil, bad(fmt.Errorf("endpoint %q: scheme %q is not http, https, unix or unixs", ep, scheme))
			}
		}
		a, err := cluster.ParseAddress(hostPort)
		if err != nil {
			return nil, nil, bad(err)
		}
		tcp = append(tcp, a.String())
	}
	return eps, tcp, nil
}

// prefix is <namespace>/<serviceName>/, under which each node's key is its ID.
func (c Config) prefix() string {
	return strings.TrimRight(c.Namespace, "/") + "/" + c.ServiceName + "/"
}

func (c Config) validate() error {
	if _, _, err := c.endpoints(); err != nil {
		return err
	}
	if c.ServiceName == "" || strings.Contains(c.ServiceName, "/") {
		return &cluster.ConfigError{Key: key("serviceName"), Value: c.ServiceName, Accepted: "a non-empty name without '/' (SW_CLUSTER_ETCD_SERVICE_NAME)"}
	}
	if c.TTL < 2*time.Second || c.TTL%time.Second != 0 {
		return &cluster.ConfigError{Key: key("ttl"), Value: c.TTL.String(), Accepted: "a whole number of seconds, at least 2s, e.g. 10s (SW_CLUSTER_ETCD_TTL)"}
	}
	if c.ElectionTTL < 2*time.Second || c.ElectionTTL%time.Second != 0 {
		return &cluster.ConfigError{Key: key("electionTTL"), Value: c.ElectionTTL.String(), Accepted: "a whole number of seconds, at least 2s, e.g. 10s (SW_CLUSTER_ETCD_ELECTION_TTL)"}
	}
	if c.DialTimeout <= 0 {
		return &cluster.ConfigError{Key: key("dialTimeout"), Value: c.DialTimeout.String(), Accepted: "a positive duration, e.g. 5s (SW_CLUSTER_ETCD_DIAL_TIMEOUT)"}
	}
	if c.Authentication && c.User == "" {
		return &cluster.ConfigError{Key: key("user"), Value: "", Accepted: "a user name when authentication is true (SW_CLUSTER_ETCD_USER)"}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return &cluster.ConfigError{Key: key("tlsCertFile"), Value: c.TLSCertFile, Accepted: "tlsCertFile and tlsKeyFile set together, or neither"}
	}
	return nil
}

// tlsConfig returns nil when no TLS file is configured.
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.TLSCAFile == "" && c.TLSCertFile == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, &cluster.ConfigError{Key: key("tlsCaFile"), Value: c.TLSCAFile, Accepted: "a readable PEM file", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &cluster.ConfigError{Key: key("tlsCaFile"), Value: c.TLSCAFile, Accepted: "a PEM file with at least one certificate"}
		}
		t.RootCAs = pool
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, &cluster.ConfigError{Key: key("tlsCertFile"), Value: c.TLSCertFile, Accepted: "a PEM certificate matching tlsKeyFile", Err: fmt.Errorf("loading key pair: %w", err)}
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// whatToCheck names the settings most likely behind a failed start-up.
func (c Config) whatToCheck(err error) string {
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed):
		return "check cluster.etcd.user and cluster.etcd.password (SW_CLUSTER_ETCD_USER, SW_CLUSTER_ETCD_PASSWORD)"
	case errors.Is(err, rpctypes.ErrPermissionDenied), errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrUserNotFound):
		if !c.Authentication {
			return "the server has authentication on: set cluster.etcd.authentication to true with cluster.etcd.user and cluster.etcd.password " +
				"(SW_CLUSTER_ETCD_AUTHENTICATION, SW_CLUSTER_ETCD_USER, SW_CLUSTER_ETCD_PASSWORD), or give the client certificate's common name a role"
		}
		return fmt.Sprintf("user %q may not read and write %s: grant its role readwrite on that prefix, or change cluster.etcd.namespace / cluster.etcd.serviceName (SW_CLUSTER_ETCD_NAMESPACE, SW_CLUSTER_ETCD_SERVICE_NAME)", c.User, c.prefix())
	}
	hint := "check cluster.etcd.endpoints / SW_CLUSTER_ETCD_ENDPOINTS"
	if c.TLSCAFile == "" && c.TLSCertFile == "" {
		hint += "; if the server speaks TLS, set cluster.etcd.tlsCaFile (SW_CLUSTER_ETCD_TLS_CA_FILE), and tlsCertFile/tlsKeyFile if it requires client certificates"
	} else if c.TLSCertFile == "" {
		hint += "; if the server requires client certificates, set cluster.etcd.tlsCertFile and tlsKeyFile (SW_CLUSTER_ETCD_TLS_CERT_FILE, SW_CLUSTER_ETCD_TLS_KEY_FILE)"
	} else {
		hint += ", and the TLS files cluster.etcd.tlsCaFile, tlsCertFile, tlsKeyFile"
	}
	if c.Authentication {
		hint += ", and cluster.etcd.user / password"
	}
	return hint
}
