// Package embedetcd runs a real etcd server in-process on loopback, for the
// demo and for tests. It can stop and start again on the same data directory
// and ports, which the recovery tests rely on.
package embedetcd

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/herd-go/herd/internal/ports"
)

// Server is one single-member etcd cluster.
type Server struct {
	mu                   sync.Mutex
	dir                  string
	ownDir               bool
	clientPort, peerPort int
	etcd                 *embed.Etcd
}

// Start starts a server storing its data in dir; an empty dir means a new
// temporary directory that Close removes.
func Start(dir string) (*Server, error) {
	s := &Server{dir: dir}
	if dir == "" {
		d, err := os.MkdirTemp("", "herd-etcd-")
		if err != nil {
			return nil, err
		}
		s.dir, s.ownDir = d, true
	}
	var err error
	if s.clientPort, err = ports.Free(); err != nil {
		return nil, err
	}
	if s.peerPort, err = ports.Free(); err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// Endpoint is the client address, host:port.
func (s *Server) Endpoint() string { return fmt.Sprintf("127.0.0.1:%d", s.clientPort) }

func (s *Server) start() error {
	cfg := embed.NewConfig()
	cfg.Name = "herd"
	cfg.Dir = s.dir
	// The server's own logs would drown the demo's output and test failures.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cu := url.URL{Scheme: "http", Host: s.Endpoint()}
	pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", s.peerPort)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Short elections keep restart tests quick; loopback has no latency.
	cfg.TickMs, cfg.ElectionMs = 50, 500
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(30 * time.Second):
		e.Close()
		return errors.New("embedded etcd: not ready after 30s")
	}
	s.mu.Lock()
	s.etcd = e
	s.mu.Unlock()
	return nil
}

// Stop stops the server, keeping its data; Restart brings it back.
func (s *Server) Stop() {
	s.mu.Lock()
	e := s.etcd
	s.etcd = nil
	s.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

// Restart starts a stopped server again on the same data and ports.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

// Close stops the server and removes a temporary data directory.
func (s *Server) Close() {
	s.Stop()
	s.cleanup()
}

func (s *Server) cleanup() {
	if s.ownDir {
		os.RemoveAll(s.dir)
	}
}
