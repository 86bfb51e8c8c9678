package testserver

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards loopback TCP connections to a server and can cut them off,
// so a test can partition a client from a live server: long enough, and the
// server expires the client's session.
type Proxy struct {
	Addr     string
	upstream string
	lis      net.Listener

	mu      sync.Mutex
	cut     bool
	stall   bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	stopped bool
}

// StartProxy listens on a free loopback port and forwards to upstream.
func StartProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p, err := ListenProxy(t, "127.0.0.1:0", upstream)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ListenProxy listens on addr and forwards to upstream; it fails if addr is
// taken, for callers that need a given port (Nacos' gRPC port is its HTTP
// port + 1000) and try another.
func ListenProxy(t testing.TB, addr, upstream string) (*Proxy, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: lis.Addr().String(), upstream: upstream, lis: lis, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.stop)
	return p, nil
}

// Partition closes every forwarded connection and refuses new ones.
func (p *Proxy) Partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.stall = true, false
	for c := range p.conns {
		c.Close()
	}
}

// Stall accepts new connections and never answers on them, as a server that
// is starting can; Heal or Partition ends it.
func (p *Proxy) Stall() {
	p.mu.Lock()
	p.stall = true
	p.mu.Unlock()
}

// Heal forwards new connections again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut, p.stall = false, false
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut || p.stopped {
			p.mu.Unlock()
			down.Close()
			continue
		}
		if p.stall {
			p.conns[down] = struct{}{} // held open until Partition or stop
			p.mu.Unlock()
			continue
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			p.mu.Unlock()
			down.Close()
			continue
		}
		p.conns[down], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(down, up)
		go p.pipe(up, down)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *Proxy) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.lis.Close()
	p.Partition()
	p.wg.Wait()
}
