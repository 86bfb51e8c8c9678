// Package peertls secures the gRPC traffic between herd peers with mutual
// TLS configured from the cluster.tls section (SW_CLUSTER_TLS_*), for both
// sides from one value: the server that receives (remote.Server on your
// grpc.Server) and every peer client the Manager dials.
//
//	creds, err := peertls.Load(cfg) // plaintext when cluster.tls sets no file
//	g := grpc.NewServer(creds.ServerOption())
//	peers, err := remote.NewManager(coord, self, srv,
//		remote.WithClientOptions(remote.WithDialOptions(creds.DialOption())))
//
// Certificates and the CA bundle are read again when their files change,
// checked at each new connection, so a rotation needs no restart: write the
// new files (a rename each, or certificate before key) and new connections
// use them; established connections keep the certificates they were made
// with. Files that do not load, or a certificate its own CA file does not
// accept, are reported and the previous ones kept.
package peertls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/herd-go/herd/cluster"
)

// Option changes how credentials are made.
type Option func(*options)

type options struct {
	logger *slog.Logger
}

// WithLogger receives refused handshakes and failed reloads; by default
// nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Credentials are the transport security of one node's peer traffic,
// plaintext or mutual TLS.
type Credentials struct {
	cfg  Config
	opts options
	min  uint16

	mu       sync.Mutex
	material *material
}

// Load reads the cluster.tls section of cfg and returns its credentials.
func Load(cfg *cluster.Config, opts ...Option) (*Credentials, error) {
	c, err := FromCluster(cfg)
	if err != nil {
		return nil, err
	}
	return New(c, opts...)
}

// New returns the credentials c describes. With TLS on, the files are read
// now, and an unreadable file, a key that does not match its certificate, or
// a certificate that the CA file does not accept is an error naming the
// setting.
func New(c Config, opts ...Option) (*Credentials, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	min, _ := c.minVersion()
	cr := &Credentials{cfg: c, opts: o, min: min}
	if !c.Enabled() {
		return cr, nil
	}
	m, err := loadMaterial(c)
	if err != nil {
		return nil, err
	}
	cr.material = m
	return cr, nil
}

// Enabled reports whether peer traffic uses TLS.
func (cr *Credentials) Enabled() bool { return cr.cfg.Enabled() }

// ServerOption configures a grpc.Server's transport security.
func (cr *Credentials) ServerOption() grpc.ServerOption { return grpc.Creds(cr.Transport()) }

// DialOption configures a peer connection's transport security.
func (cr *Credentials) DialOption() grpc.DialOption {
	return grpc.WithTransportCredentials(cr.Transport())
}

// Transport returns the gRPC transport credentials, for both sides.
func (cr *Credentials) Transport() credentials.TransportCredentials {
	if !cr.Enabled() {
		return insecure.NewCredentials()
	}
	return &transport{cr: cr}
}

// current returns the material to use for a new connection, reloading it
// first when a file changed.
func (cr *Credentials) current() *material {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.material.changed(cr.cfg) {
		m, err := loadMaterial(cr.cfg)
		if err != nil {
			cr.opts.logger.Error("herd/peertls: new certificate files do not load; keeping the previous ones", "err", err)
			cr.material.stamps = stampFiles(cr.cfg) // report a bad rotation once, not at every connection
		} else {
			cr.opts.logger.Info("herd/peertls: certificates reloaded", "cert", cr.cfg.CertFile, "expires", m.cert.Leaf.NotAfter)
			cr.material = m
		}
	}
	return cr.material
}

// material is what one generation of the files holds.
type material struct {
	cert   tls.Certificate
	roots  *x509.CertPool
	stamps [3]stamp // of the CA, certificate and key files, when read
}

// stamp identifies a file's version: it differs when the file was replaced
// (renamed over), rewritten or removed.
type stamp struct {
	info os.FileInfo // nil when the file could not be statted
}

func (s stamp) same(o stamp) bool {
	if s.info == nil || o.info == nil {
		return s.info == nil && o.info == nil
	}
	return os.SameFile(s.info, o.info) && s.info.Size() == o.info.Size() && s.info.ModTime().Equal(o.info.ModTime())
}

func stampFiles(c Config) (s [3]stamp) {
	for i, path := range []string{c.CAFile, c.CertFile, c.KeyFile} {
		if info, err := os.Stat(path); err == nil {
			s[i].info = info
		}
	}
	return s
}

// changed reports whether any file differs from when m was read.
func (m *material) changed(c Config) bool {
	now := stampFiles(c)
	for i := range now {
		if !now[i].same(m.stamps[i]) {
			return true
		}
	}
	return false
}

func loadMaterial(c Config) (*material, error) {
	// Stamped before reading: a file replaced while it is read is read
	// again at the next connection.
	m := &material{stamps: stampFiles(c)}
	pemCA, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, &cluster.ConfigError{Key: caFileSetting.key, Value: c.CAFile, Accepted: "a readable PEM file of CA certificates (" + caFileSetting.env + ")", Err: err}
	}
	m.roots = x509.NewCertPool()
	if !m.roots.AppendCertsFromPEM(pemCA) {
		return nil, &cluster.ConfigError{Key: caFileSetting.key, Value: c.CAFile, Accepted: "a PEM file with at least one CA certificate (" + caFileSetting.env + ")"}
	}
	m.cert, err = tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, &cluster.ConfigError{Key: certFileSetting.key, Value: c.CertFile,
			Accepted: fmt.Sprintf("a PEM certificate whose key is in %s (%s, %s)", keyFileSetting.key, certFileSetting.env, keyFileSetting.env), Err: err}
	}
	// Peers would refuse a certificate this CA file does not accept; say so
	// now, not at every connection.
	chain := []*x509.Certificate{m.cert.Leaf}
	for _, der := range m.cert.Certificate[1:] {
		if inter, err := x509.ParseCertificate(der); err == nil {
			chain = append(chain, inter)
		}
	}
	if err := verify(m.roots, chain, "", x509.ExtKeyUsageClientAuth); err != nil {
		return nil, &cluster.ConfigError{Key: certFileSetting.key, Value: c.CertFile,
			Accepted: fmt.Sprintf("a current certificate signed by a CA in %s, for client and server use (%s)", caFileSetting.key, certFileSetting.env), Err: err}
	}
	return m, nil
}

// verify checks chain[0], a leaf certificate, against roots with chain[1:]
// as intermediates: its chain, its validity period now, its key usage, and
// name when it is not empty.
func verify(roots *x509.CertPool, chain []*x509.Certificate, name string, usage x509.ExtKeyUsage) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

// verifyPeer is a handshake's check of the certificates a peer presented,
// against the CA file of this generation of the material; who names the
// peer in the error.
func (m *material) verifyPeer(certs []*x509.Certificate, name string, usage x509.ExtKeyUsage, who string) error {
	if err := verify(m.roots, certs, name, usage); err != nil {
		return explain(err, who)
	}
	return nil
}

// explain turns a verification failure into what to fix, naming the
// setting; who is "the peer at 10.0.0.7:11800" or "this node".
func explain(err error, who string) error {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("the certificate of %s is not signed by a CA in %s: %w", who, caFileSetting, err)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Errorf("the certificate of %s is expired or not yet valid; renew its %s: %w", who, certFileSetting.key, err)
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return fmt.Errorf("the certificate of %s is not for both client and server use (extended key usage); reissue its %s: %w", who, certFileSetting.key, err)
	case errors.As(err, &host):
		return fmt.Errorf("the certificate of %s does not name %q; set %s to a name it carries, or reissue it with that name: %w", who, host.Host, serverNameSetting, err)
	}
	return fmt.Errorf("the certificate of %s is refused: %w", who, err)
}

// transport is the TLS side of Credentials for gRPC. Each handshake builds
// its tls.Config from the current material, so rotated files apply to the
// next connection.
type transport struct {
	cr                 *Credentials
	serverNameOverride string
}

func (t *transport) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	m := t.cr.current()
	name := t.cr.cfg.ServerName
	if t.serverNameOverride != "" {
		name = t.serverNameOverride
	}
	if name == "" {
		name = authority
		if h, _, err := net.SplitHostPort(authority); err == nil {
			name = h
		}
	}
	who := "the peer at " + raw.RemoteAddr().String()
	cfg := &tls.Config{
		MinVersion:   t.cr.min,
		Certificates: []tls.Certificate{m.cert},
		ServerName:   name,
		// The chain is checked below against the CA file of this
		// connection's generation, which a fixed RootCAs could not follow.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%s presented no certificate", who)
			}
			return m.verifyPeer(cs.PeerCertificates, name, x509.ExtKeyUsageServerAuth, who)
		},
	}
	conn, info, err := credentials.NewTLS(cfg).ClientHandshake(ctx, authority, raw)
	if err != nil {
		return nil, nil, clientHint(err, who)
	}
	return conn, info, nil
}

// clientHint adds what to fix to a handshake error that the other side
// caused.
func clientHint(err error, who string) error {
	var rec tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.As(err, &rec):
		return fmt.Errorf("%s does not speak TLS: set %s, %s and %s there too, or unset them here: %w", who, caFileSetting.key, certFileSetting.key, keyFileSetting.key, err)
	case errors.As(err, &alert):
		return fmt.Errorf("%s refused this node's certificate; check that %s here is current and signed by a CA in that peer's %s: %w", who, certFileSetting, caFileSetting.key, err)
	case strings.Contains(err.Error(), "tls: protocol version not supported"):
		return fmt.Errorf("%s and this node share no TLS version; check %s on both: %w", who, minVersionSetting, err)
	}
	return err
}

func (t *transport) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	m := t.cr.current()
	who := "the peer at " + raw.RemoteAddr().String()
	auth := tls.RequestClientCert
	if t.cr.cfg.RequireClientCert {
		auth = tls.RequireAnyClientCert
	}
	cfg := &tls.Config{
		MinVersion:   t.cr.min,
		Certificates: []tls.Certificate{m.cert},
		ClientAuth:   auth,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil // allowed: RequireClientCert is off
			}
			return m.verifyPeer(cs.PeerCertificates, "", x509.ExtKeyUsageClientAuth, who)
		},
	}
	conn, info, err := credentials.NewTLS(cfg).ServerHandshake(raw)
	if err != nil {
		err = serverHint(err, who)
		t.cr.opts.logger.Warn("herd/peertls: refused a connection", "peer", raw.RemoteAddr().String(), "err", err)
		return nil, nil, err
	}
	return conn, info, nil
}

func serverHint(err error, who string) error {
	var rec tls.RecordHeaderError
	switch {
	case errors.As(err, &rec):
		return fmt.Errorf("%s does not speak TLS: it must set %s, %s and %s too: %w", who, caFileSetting.key, certFileSetting.key, keyFileSetting.key, err)
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		return fmt.Errorf("%s presented no certificate: it must set %s and %s, or set %s to false here: %w", who, certFileSetting.key, keyFileSetting.key, requireSetting, err)
	case strings.Contains(err.Error(), "protocol version not supported"), strings.Contains(err.Error(), "unsupported versions"):
		return fmt.Errorf("%s and this node share no TLS version; check %s on both: %w", who, minVersionSetting, err)
	}
	return err
}

func (t *transport) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (t *transport) Clone() credentials.TransportCredentials {
	c := *t
	return &c
}

// OverrideServerName is gRPC's deprecated way to set the name to verify.
func (t *transport) OverrideServerName(name string) error {
	t.serverNameOverride = name
	return nil
}
