package peertls

import (
	"crypto/tls"
	_ "embed"
	"fmt"

	"github.com/herd-go/herd/cluster"
)

// Config is the cluster.tls section: the files of mutual TLS between peers.
// TLS is on when any file is set, and then all three must be.
type Config struct {
	// CAFile holds the PEM certificates of the CAs whose certificates this
	// node accepts from its peers (SW_CLUSTER_TLS_CA_FILE). It defines who
	// belongs to the fleet: use a CA of your own, never a public one.
	CAFile string `yaml:"caFile"`
	// CertFile and KeyFile are this node's certificate (chain) and its key,
	// presented as server and as client (SW_CLUSTER_TLS_CERT_FILE,
	// SW_CLUSTER_TLS_KEY_FILE). The certificate needs both the server and
	// client extended key usages, or none.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// ServerName is the name a peer's certificate must carry
	// (SW_CLUSTER_TLS_SERVER_NAME); empty means the host of the peer's
	// advertised address, which its certificate must then name as a DNS or
	// IP subject alternative name.
	ServerName string `yaml:"serverName"`
	// RequireClientCert refuses peers that connect without a certificate
	// from CAFile (SW_CLUSTER_TLS_REQUIRE_CLIENT_CERT), default true.
	RequireClientCert bool `yaml:"requireClientCert"`
	// MinVersion is the oldest TLS version accepted, "1.3" (the default) or
	// "1.2" (SW_CLUSTER_TLS_MIN_VERSION).
	MinVersion string `yaml:"minVersion"`
}

// section is the cluster.tls part of herd's built-in configuration,
// declared here, where it is read.
//
//go:embed config.yaml
var section []byte

func init() { cluster.RegisterSection("tls", section, DefaultConfig()) }

// DefaultConfig returns the values of herd's built-in configuration:
// plaintext, and when files are set, TLS 1.3 with client certificates
// required.
func DefaultConfig() Config {
	return Config{RequireClientCert: true, MinVersion: "1.3"}
}

// FromCluster decodes the cluster.tls section of cfg.
func FromCluster(cfg *cluster.Config) (Config, error) {
	c := DefaultConfig()
	if err := cfg.Section("tls").Decode(&c); err != nil {
		return Config{}, err
	}
	return c, c.validate()
}

// Enabled reports whether any TLS file is configured.
func (c Config) Enabled() bool { return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" }

// setting names a key of the section with its environment variable, the
// way messages show a user what to fix.
type setting struct{ key, env string }

var (
	caFileSetting     = setting{"cluster.tls.caFile", "SW_CLUSTER_TLS_CA_FILE"}
	certFileSetting   = setting{"cluster.tls.certFile", "SW_CLUSTER_TLS_CERT_FILE"}
	keyFileSetting    = setting{"cluster.tls.keyFile", "SW_CLUSTER_TLS_KEY_FILE"}
	serverNameSetting = setting{"cluster.tls.serverName", "SW_CLUSTER_TLS_SERVER_NAME"}
	requireSetting    = setting{"cluster.tls.requireClientCert", "SW_CLUSTER_TLS_REQUIRE_CLIENT_CERT"}
	minVersionSetting = setting{"cluster.tls.minVersion", "SW_CLUSTER_TLS_MIN_VERSION"}
)

func (s setting) String() string { return s.key + " (" + s.env + ")" }

func (c Config) validate() error {
	if _, err := c.minVersion(); err != nil {
		return err
	}
	if !c.Enabled() {
		if c.ServerName != "" {
			return &cluster.ConfigError{Key: serverNameSetting.key, Value: c.ServerName,
				Accepted: fmt.Sprintf("empty while TLS is off: set %s, %s and %s to turn TLS on", caFileSetting, certFileSetting, keyFileSetting)}
		}
		return nil
	}
	for _, f := range []struct {
		s     setting
		value string
	}{{caFileSetting, c.CAFile}, {certFileSetting, c.CertFile}, {keyFileSetting, c.KeyFile}} {
		if f.value == "" {
			return &cluster.ConfigError{Key: f.s.key, Value: "",
				Accepted: fmt.Sprintf("a PEM file path (%s): mutual TLS needs %s, %s and %s together", f.s.env, caFileSetting.key, certFileSetting.key, keyFileSetting.key)}
		}
	}
	return nil
}

func (c Config) minVersion() (uint16, error) {
	switch c.MinVersion {
	case "", "1.3":
		return tls.VersionTLS13, nil
	case "1.2":
		return tls.VersionTLS12, nil
	}
	return 0, &cluster.ConfigError{Key: minVersionSetting.key, Value: c.MinVersion, Accepted: `"1.3" or "1.2" (` + minVersionSetting.env + ")"}
}
