package etcd_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/etcd"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/testcert"
)

// secureEtcd starts a real etcd that speaks only TLS and requires client
// certificates, with authentication on: root, and a user "herd" whose role
// may read and write under prefix and nothing else. It returns the client
// endpoint and the CA and client certificate files.
func secureEtcd(t *testing.T, prefix string) (endpoint string, ca *testcert.CA, client testcert.Leaf) {
	t.Helper()
	ca = testcert.NewCA(t, "etcd")
	server := ca.Issue(testcert.LeafOptions{})
	client = ca.Issue(testcert.LeafOptions{CommonName: "herd"})
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	cfg := embed.NewConfig()
	cfg.Name = "secure"
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cu := url.URL{Scheme: "https", Host: net.JoinHostPort("127.0.0.1", itoa(port()))}
	pu := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", itoa(port()))}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = server.CertFile, server.KeyFile
	cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = ca.File, true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("the TLS etcd was not ready after 30s")
	}
	endpoint = cu.Host

	root := tlsClient(t, endpoint, ca, client, "", "")
	ctx := context.Background()
	steps := []func() error{
		func() error { _, err := root.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := root.RoleAdd(ctx, "herd"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "herd", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := root.UserAdd(ctx, "herd", "herdpw"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "herd", "herd"); return err },
		func() error { _, err := root.AuthEnable(ctx); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	return endpoint, ca, client
}

func itoa(i int) string { return (&net.TCPAddr{Port: i}).String()[1:] }

func tlsClient(t *testing.T, endpoint string, ca *testcert.CA, leaf testcert.Leaf, user, password string) *clientv3.Client {
	t.Helper()
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM())
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// herd on an etcd with client TLS and authentication on, as a user limited
// to herd's prefix: it registers and sees its peers; that user can read
// nothing outside the prefix; wrong or missing credentials and a missing
// client certificate fail at start naming the setting to fix.
func TestAuthenticationAndTLS(t *testing.T) {
	leakCheck(t)
	cfg := etcd.DefaultConfig()
	cfg.Namespace = "/herd-secure"
	prefix := cfg.Namespace + "/" + cfg.ServiceName + "/"
	endpoint, ca, leaf := secureEtcd(t, prefix)
	cfg.Endpoints = endpoint
	cfg.Authentication, cfg.User, cfg.Password = true, "herd", "herdpw"
	cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile = ca.File, leaf.CertFile, leaf.KeyFile
	cfg.DialTimeout = 2 * time.Second

	a, b := newCoordinator(t, cfg), newCoordinator(t, cfg)
	defer a.Close()
	defer b.Close()
	na, nb := clusterwait.NewNode(), clusterwait.NewNode()
	if err := a.RegisterRemote(context.Background(), na); err != nil {
		t.Fatalf("registering as the limited user: %v", err)
	}
	if err := b.RegisterRemote(context.Background(), nb); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitFor(t, a.Watch(context.Background()), 5*time.Second, "both nodes", func(ns []cluster.Node) bool {
		return clusterwait.Has(ns, na.ID) && clusterwait.Has(ns, nb.ID)
	})

	limited := tlsClient(t, endpoint, ca, leaf, "herd", "herdpw")
	if _, err := limited.Get(context.Background(), "/elsewhere/secret"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("the limited user reading outside herd's prefix: %v, want permission denied", err)
	}
	if _, err := limited.Put(context.Background(), "/elsewhere/x", "y"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("the limited user writing outside herd's prefix: %v, want permission denied", err)
	}

	for name, tc := range map[string]struct {
		mutate func(*etcd.Config)
		says   []string
	}{
		"wrong password": {func(c *etcd.Config) { c.Password = "wrong" }, []string{"SW_CLUSTER_ETCD_USER", "SW_CLUSTER_ETCD_PASSWORD"}},
		// etcd takes a client certificate's common name as the user when no
		// password is given: one that names no user is refused.
		"no credentials": {func(c *etcd.Config) {
			stranger := ca.Issue(testcert.LeafOptions{CommonName: "stranger"})
			c.Authentication, c.TLSCertFile, c.TLSKeyFile = false, stranger.CertFile, stranger.KeyFile
		}, []string{"SW_CLUSTER_ETCD_AUTHENTICATION"}},
		"no permission on the prefix": {func(c *etcd.Config) { c.Namespace = "/elsewhere" }, []string{"permission", "/elsewhere/"}},
		"no client certificate":       {func(c *etcd.Config) { c.TLSCertFile, c.TLSKeyFile = "", "" }, []string{"SW_CLUSTER_ETCD_TLS_CERT_FILE"}},
		"no TLS":                      {func(c *etcd.Config) { c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = "", "", "" }, []string{"SW_CLUSTER_ETCD_TLS_CA_FILE"}},
	} {
		t.Run(name, func(t *testing.T) {
			bad := cfg
			tc.mutate(&bad)
			c, err := etcd.New(context.Background(), bad, cluster.WithLogger(quiet))
			if err == nil {
				c.Close()
				t.Fatal("New succeeded")
			}
			for _, want := range tc.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
		})
	}
}
