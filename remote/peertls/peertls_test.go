package peertls_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
	"github.com/herd-go/herd/internal/testsupport/testcert"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/remote/peertls"
)

// logBuffer collects what a side logs, for the messages a user would read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// waitLog waits until the log holds want.
func (l *logBuffer) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(l.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q; it holds:\n%s", want, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func tlsConfig(ca *testcert.CA, leaf testcert.Leaf) peertls.Config {
	c := peertls.DefaultConfig()
	c.CAFile, c.CertFile, c.KeyFile = ca.File, leaf.CertFile, leaf.KeyFile
	return c
}

func credsOf(t *testing.T, c peertls.Config, opts ...peertls.Option) *peertls.Credentials {
	t.Helper()
	cr, err := peertls.New(c, opts...)
	if err != nil {
		t.Fatalf("peertls.New: %v", err)
	}
	return cr
}

// delivery is a message a server received, with the TLS state it came over.
type delivery struct {
	data string
	tls  *tls.ConnectionState
}

// serve starts a remote.Server with creds on loopback and returns its
// address and what it receives.
func serve(t *testing.T, creds *peertls.Credentials) (string, <-chan delivery) {
	t.Helper()
	got := make(chan delivery, 16)
	srv := remote.NewServer()
	if err := srv.Handle("w", remote.HandlerFunc(func(ctx context.Context, data []byte) {
		d := delivery{data: string(data)}
		if p, ok := peer.FromContext(ctx); ok {
			if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				d.tls = &info.State
			}
		}
		got <- d
	})); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(creds.ServerOption())
	srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String(), got
}

// dial returns a peer client to addr with creds (nil: the plaintext default).
func dial(t *testing.T, addr string, creds *peertls.Credentials) *remote.PeerClient {
	t.Helper()
	a, err := cluster.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.ClientOption{remote.WithCloseTimeout(100 * time.Millisecond)}
	if creds != nil {
		opts = append(opts, remote.WithDialOptions(creds.DialOption()))
	}
	pc, err := remote.DialPeer(cluster.Node{ID: "server", Address: a}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

func send(t *testing.T, pc *remote.PeerClient, data string) {
	t.Helper()
	if err := pc.Send(context.Background(), "w", []byte(data)); err != nil {
		t.Fatal(err)
	}
}

func received(t *testing.T, got <-chan delivery) delivery {
	t.Helper()
	select {
	case d := <-got:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("the server received nothing")
		return delivery{}
	}
}

// refused waits for the client to report a failed connection, checks that
// the server received nothing, and returns the client's error.
func refused(t *testing.T, pc *remote.PeerClient, got <-chan delivery) error {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for pc.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the client never reported a failed connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case d := <-got:
		t.Fatalf("the server received %q over a connection it should have refused", d.data)
	default:
	}
	return pc.Err()
}

func TestMutualTLSDeliversOverTLS13(t *testing.T) {
	leakcheck.Register(t)
	ca := testcert.NewCA(t, "fleet")
	addr, got := serve(t, credsOf(t, tlsConfig(ca, ca.Issue(testcert.LeafOptions{}))))
	client := ca.Issue(testcert.LeafOptions{CommonName: "client"})
	pc := dial(t, addr, credsOf(t, tlsConfig(ca, client)))
	send(t, pc, "hello")
	d := received(t, got)
	if d.data != "hello" || d.tls == nil {
		t.Fatalf("received %q, TLS %v", d.data, d.tls)
	}
	if d.tls.Version != tls.VersionTLS13 || len(d.tls.PeerCertificates) == 0 || d.tls.PeerCertificates[0].SerialNumber.Cmp(client.Serial) != 0 {
		t.Fatalf("TLS version %x, peer certificates %d: want TLS 1.3 with the client's certificate", d.tls.Version, len(d.tls.PeerCertificates))
	}
	if pc.Err() != nil {
		t.Fatalf("Err after a delivery = %v", pc.Err())
	}
}

// A client from another fleet (another CA) refuses the server's
// certificate, and says which setting decides.
func TestServerFromAnotherCAIsRefused(t *testing.T) {
	ours, theirs := testcert.NewCA(t, "ours"), testcert.NewCA(t, "theirs")
	addr, got := serve(t, credsOf(t, tlsConfig(ours, ours.Issue(testcert.LeafOptions{}))))
	pc := dial(t, addr, credsOf(t, tlsConfig(theirs, theirs.Issue(testcert.LeafOptions{}))))
	send(t, pc, "x")
	err := refused(t, pc, got)
	if !strings.Contains(err.Error(), "not signed by a CA in cluster.tls.caFile (SW_CLUSTER_TLS_CA_FILE)") {
		t.Fatalf("the client's error does not name the setting: %v", err)
	}
}

// A client whose certificate comes from a CA the server does not trust is
// refused by the server, which logs the setting that decides.
func TestClientFromAnotherCAIsRefused(t *testing.T) {
	ours, theirs := testcert.NewCA(t, "ours"), testcert.NewCA(t, "theirs")
	var serverLog logBuffer
	addr, got := serve(t, credsOf(t, tlsConfig(ours, ours.Issue(testcert.LeafOptions{})), peertls.WithLogger(serverLog.logger())))
	// The client trusts both CAs, so only the server can refuse.
	pc := dial(t, addr, credsOf(t, trustingBoth(t, ours, theirs)))
	send(t, pc, "x")
	serverLog.waitLog(t, "not signed by a CA in cluster.tls.caFile (SW_CLUSTER_TLS_CA_FILE)")
	select {
	case d := <-got:
		t.Fatalf("the server received %q from a client it refused", d.data)
	case <-time.After(200 * time.Millisecond):
	}
}

// trustingBoth is the config of a peer with a certificate from own that
// trusts both other and own.
func trustingBoth(t *testing.T, other, own *testcert.CA) peertls.Config {
	bundle := filepath.Join(t.TempDir(), "both.pem")
	testcert.WriteFile(t, bundle, append(other.PEM(), own.PEM()...))
	c := tlsConfig(own, own.Issue(testcert.LeafOptions{}))
	c.CAFile = bundle
	return c
}

func TestPlaintextClientIsRefused(t *testing.T) {
	ca := testcert.NewCA(t, "fleet")
	var serverLog logBuffer
	addr, got := serve(t, credsOf(t, tlsConfig(ca, ca.Issue(testcert.LeafOptions{})), peertls.WithLogger(serverLog.logger())))
	pc := dial(t, addr, nil)
	send(t, pc, "x")
	refused(t, pc, got)
	serverLog.waitLog(t, "does not speak TLS: it must set cluster.tls.caFile, cluster.tls.certFile and cluster.tls.keyFile too")
}

func TestTLSClientToPlaintextServerSaysSo(t *testing.T) {
	plain, err := peertls.New(peertls.DefaultConfig())
	if err != nil || plain.Enabled() {
		t.Fatalf("the default is plaintext: %v, enabled %v", err, plain.Enabled())
	}
	addr, got := serve(t, plain)
	ca := testcert.NewCA(t, "fleet")
	pc := dial(t, addr, credsOf(t, tlsConfig(ca, ca.Issue(testcert.LeafOptions{}))))
	send(t, pc, "x")
	if err := refused(t, pc, got); !strings.Contains(err.Error(), "does not speak TLS") {
		t.Fatalf("the client's error does not say the peer is plaintext: %v", err)
	}
}

// tlsHandshake makes a raw TLS connection to addr and returns the server's
// leaf certificate, or the handshake's error.
func tlsHandshake(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// In TLS 1.3 the server's verdict on the client's certificate comes
	// after the client's handshake: read to see it.
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := conn.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, err
	}
	return conn.ConnectionState().PeerCertificates[0], nil
}

func clientTLS(t *testing.T, ca *testcert.CA, leaf *testcert.Leaf) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM())
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"h2"}}
	if leaf != nil {
		cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

// An expired certificate is refused on either side: the server refuses a
// client's, and a herd client refuses a server's.
func TestExpiredCertificateIsRefused(t *testing.T) {
	ca := testcert.NewCA(t, "fleet")
	expired := ca.Issue(testcert.LeafOptions{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})

	var serverLog logBuffer
	addr, _ := serve(t, credsOf(t, tlsConfig(ca, ca.Issue(testcert.LeafOptions{})), peertls.WithLogger(serverLog.logger())))
	if _, err := tlsHandshake(addr, clientTLS(t, ca, &expired)); err == nil {
		t.Fatal("the server accepted a client with an expired certificate")
	}
	serverLog.waitLog(t, "is expired or not yet valid; renew its cluster.tls.certFile")

	// A server presenting an expired certificate (not a herd node: herd
	// does not start with one, see TestOwnCertificateIsCheckedAtStart).
	cert, err := tls.X509KeyPair(expired.CertPEM, expired.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	pc := dial(t, lis.Addr().String(), credsOf(t, tlsConfig(ca, ca.Issue(testcert.LeafOptions{}))))
	send(t, pc, "x")
	if err := refused(t, pc, nil); !strings.Contains(err.Error(), "is expired or not yet valid") {
		t.Fatalf("the client's error does not say the certificate expired: %v", err)
	}
}

func TestClientWithoutCertificate(t *testing.T) {
	ca := testcert.NewCA(t, "fleet")
	var serverLog logBuffer
	addr, _ := serve(t, credsOf(t, tlsConfig(ca, ca.Issue(testcert.LeafOptions{})), peertls.WithLogger(serverLog.logger())))
	if _, err := tlsHandshake(addr, clientTLS(t, ca, nil)); err == nil {
		t.Fatal("a client without a certificate was accepted while requireClientCert is true")
	}
	serverLog.waitLog(t, "presented no certificate: it must set cluster.tls.certFile and cluster.tls.keyFile, or set cluster.tls.requireClientCert (SW_CLUSTER_TLS_REQUIRE_CLIENT_CERT) to false here")

	optional := tlsConfig(ca, ca.Issue(testcert.LeafOptions{}))
	optional.RequireClientCert = false
	addr, _ = serve(t, credsOf(t, optional))
	if _, err := tlsHandshake(addr, clientTLS(t, ca, nil)); err != nil {
		t.Fatalf("requireClientCert false refused a client without a certificate: %v", err)
	}
	other := testcert.NewCA(t, "other")
	foreign := other.Issue(testcert.LeafOptions{})
	if _, err := tlsHandshake(addr, clientTLS(t, ca, &foreign)); err == nil {
		t.Fatal("requireClientCert false accepted a certificate from an unknown CA: one that is given must still verify")
	}
}

func TestTLS12IsRefusedUnlessAllowed(t *testing.T) {
	ca := testcert.NewCA(t, "fleet")
	leaf := ca.Issue(testcert.LeafOptions{})
	var serverLog logBuffer
	addr, _ := serve(t, credsOf(t, tlsConfig(ca, ca.Issue(testcert.LeafOptions{})), peertls.WithLogger(serverLog.logger())))
	old := clientTLS(t, ca, &leaf)
	old.MaxVersion = tls.VersionTLS12
	if _, err := tlsHandshake(addr, old); err == nil {
		t.Fatal("a TLS 1.2 client was accepted by default")
	}
	serverLog.waitLog(t, "share no TLS version; check cluster.tls.minVersion (SW_CLUSTER_TLS_MIN_VERSION)")

	allow := tlsConfig(ca, ca.Issue(testcert.LeafOptions{}))
	allow.MinVersion = "1.2"
	addr, _ = serve(t, credsOf(t, allow))
	if _, err := tlsHandshake(addr, old); err != nil {
		t.Fatalf("minVersion 1.2 refused a TLS 1.2 client: %v", err)
	}
}

// Rotated files are used by the next connection, without a restart: a new
// certificate, then a CA bundle that admits a second CA.
func TestRotationIsPickedUpWithoutRestart(t *testing.T) {
	ca := testcert.NewCA(t, "fleet")
	first := ca.Issue(testcert.LeafOptions{})
	var serverLog logBuffer
	serverCfg := tlsConfig(ca, first)
	addr, got := serve(t, credsOf(t, serverCfg, peertls.WithLogger(serverLog.logger())))
	client := ca.Issue(testcert.LeafOptions{})
	if leaf, err := tlsHandshake(addr, clientTLS(t, ca, &client)); err != nil || leaf.SerialNumber.Cmp(first.Serial) != 0 {
		t.Fatalf("before rotation: %v, %v", leaf, err)
	}

	second := ca.Issue(testcert.LeafOptions{})
	testcert.WriteFile(t, serverCfg.CertFile, second.CertPEM)
	testcert.WriteFile(t, serverCfg.KeyFile, second.KeyPEM)
	leaf, err := tlsHandshake(addr, clientTLS(t, ca, &client))
	if err != nil || leaf.SerialNumber.Cmp(second.Serial) != 0 {
		t.Fatalf("after rotation the server presented serial %v (%v), want the new %v", serialOf(leaf), err, second.Serial)
	}
	// Files are read again only when they changed: once for this rotation,
	// however many connections follow.
	if _, err := tlsHandshake(addr, clientTLS(t, ca, &client)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(serverLog.String(), "certificates reloaded"); n != 1 {
		t.Fatalf("the files were read again %d times for one rotation; want once:\n%s", n, serverLog.String())
	}

	// A second CA joins the bundle: its clients are refused before, and
	// accepted after, with no restart.
	next := testcert.NewCA(t, "next")
	pc := dial(t, addr, credsOf(t, trustingBoth(t, ca, next)))
	send(t, pc, "before")
	serverLog.waitLog(t, "not signed by a CA in cluster.tls.caFile")
	testcert.WriteFile(t, serverCfg.CAFile, append(ca.PEM(), next.PEM()...))
	if d := received(t, got); d.data != "before" {
		t.Fatalf("received %q", d.data)
	}
}

func serialOf(c *x509.Certificate) *big.Int {
	if c == nil {
		return nil
	}
	return c.SerialNumber
}

// A rotation caught half-way (a new certificate with the old key) is
// reported and the previous files stay in use until the key follows.
func TestHalfRotationKeepsThePreviousCertificate(t *testing.T) {
	ca := testcert.NewCA(t, "fleet")
	first := ca.Issue(testcert.LeafOptions{})
	var serverLog logBuffer
	serverCfg := tlsConfig(ca, first)
	addr, _ := serve(t, credsOf(t, serverCfg, peertls.WithLogger(serverLog.logger())))
	client := ca.Issue(testcert.LeafOptions{})

	second := ca.Issue(testcert.LeafOptions{})
	testcert.WriteFile(t, serverCfg.CertFile, second.CertPEM)
	leaf, err := tlsHandshake(addr, clientTLS(t, ca, &client))
	if err != nil || leaf.SerialNumber.Cmp(first.Serial) != 0 {
		t.Fatalf("half-way through a rotation the server presented %v (%v), want the previous %v", serialOf(leaf), err, first.Serial)
	}
	serverLog.waitLog(t, "new certificate files do not load; keeping the previous ones")
	testcert.WriteFile(t, serverCfg.KeyFile, second.KeyPEM)
	if leaf, err := tlsHandshake(addr, clientTLS(t, ca, &client)); err != nil || leaf.SerialNumber.Cmp(second.Serial) != 0 {
		t.Fatalf("once the key followed, the server presented %v (%v), want %v", serialOf(leaf), err, second.Serial)
	}
}

// serverName: certificates that name the fleet, not each address.
func TestServerName(t *testing.T) {
	ca := testcert.NewCA(t, "fleet")
	named := testcert.LeafOptions{DNSNames: []string{"peers.herd.internal"}, IPs: []net.IP{}}
	addr, got := serve(t, credsOf(t, tlsConfig(ca, ca.Issue(named))))

	pc := dial(t, addr, credsOf(t, tlsConfig(ca, ca.Issue(named))))
	send(t, pc, "x")
	if err := refused(t, pc, got); !strings.Contains(err.Error(), `does not name \"127.0.0.1\"; set cluster.tls.serverName (SW_CLUSTER_TLS_SERVER_NAME)`) {
		t.Fatalf("the client's error does not name the setting: %v", err)
	}
	c := tlsConfig(ca, ca.Issue(named))
	c.ServerName = "peers.herd.internal"
	pc = dial(t, addr, credsOf(t, c))
	send(t, pc, "named")
	if d := received(t, got); d.data != "named" {
		t.Fatalf("received %q", d.data)
	}
}
