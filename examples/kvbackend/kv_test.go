package kvbackend_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/clustertest"
	"github.com/herd-go/herd/examples/kvbackend"
)

// etcdServer is a real etcd server in this process, on free loopback ports,
// that the test can stop and start again on the same data.
type etcdServer struct {
	cfg  *embed.Config
	etcd *embed.Etcd
}

func startEtcd(t *testing.T) *etcdServer {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = "kv", t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cu := url.URL{Scheme: "http", Host: freeAddr(t)}
	pu := url.URL{Scheme: "http", Host: freeAddr(t)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.TickMs, cfg.ElectionMs = 50, 500
	s := &etcdServer{cfg: cfg}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *etcdServer) endpoint() string { return s.cfg.ListenClientUrls[0].Host }

func (s *etcdServer) start(t *testing.T) {
	e, err := embed.StartEtcd(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd did not start within 30s")
	}
	s.etcd = e
}

func (s *etcdServer) stop() {
	if s.etcd != nil {
		s.etcd.Close()
		s.etcd = nil
	}
}

// proxy forwards TCP to target until cut, which closes the listener and
// every connection: from the server's side, the client has crashed.
func proxy(t *testing.T, target string) (addr string, cut func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	cut = func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	t.Cleanup(cut)
	return l.Addr().String(), cut
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The backend passes herd's conformance suite on a real etcd: membership,
// duplicate IDs, protection, elections and slots. (The recovery and
// crash sections need a server the test can kill and a proxy, which the
// harness leaves out.)
func TestConformance(t *testing.T) {
	srv := startEtcd(t)
	prefix := "/conformance-" + cluster.NewID()[:8]
	const electionTTL, renew = 3 * time.Second, 500 * time.Millisecond
	at := func(t *testing.T, endpoint string) cluster.Coordinator {
		c, err := kvbackend.New(context.Background(), kvbackend.Config{
			Endpoints: []string{endpoint}, Prefix: prefix, TTL: 2 * time.Second,
			ElectionTTL: electionTTL, RenewPeriod: renew,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	clustertest.Run(t, clustertest.Harness{
		NewCoordinator: func(t *testing.T) cluster.Coordinator { return at(t, srv.endpoint()) },
		Election: &clustertest.Election{
			Partitioned: func(t *testing.T) (cluster.Coordinator, func()) {
				addr, cut := proxy(t, srv.endpoint())
				return at(t, addr), cut
			},
			// A candidate takes the record a TTL after it first saw its
			// last renewal, which it reads every renew period.
			TakeoverWithin: electionTTL + renew + time.Second,
		},
		Recovery: func(t *testing.T) clustertest.RecoveryTarget {
			own := startEtcd(t)
			return clustertest.RecoveryTarget{
				NewCoordinator: func(t *testing.T) cluster.Coordinator { return at(t, own.endpoint()) },
				Kill:           own.stop,
				Restart:        func() { own.start(t) },
			}
		},
		RecoverWithin: 15 * time.Second,
	})
}
