package gossip_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/gossip"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
)

// cuttable is memberlist's UDP/TCP transport with a switch that cuts the
// member off: nothing it sends leaves, nothing sent to it arrives, no
// stream opens either way.
type cuttable struct {
	*memberlist.NetTransport
	cut     atomic.Bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
}

// Shutdown stops the listeners before the forwarders: a listener hands
// each packet and stream on without a way out, and NetTransport.Shutdown
// waits for the listeners, so with the forwarders gone first one packet
// arriving meanwhile would hold the shutdown for good. memberlist reads
// the forwarded ones until its transport has shut down.
func (c *cuttable) Shutdown() error {
	err := c.NetTransport.Shutdown()
	close(c.done)
	return err
}

func newCuttable(t *testing.T) (*cuttable, int) {
	t.Helper()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0})
	if err != nil {
		t.Fatal(err)
	}
	c := &cuttable{NetTransport: nt, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn), done: make(chan struct{})}
	go func() {
		for {
			select {
			case <-c.done:
				return
			case p := <-nt.PacketCh():
				if !c.cut.Load() {
					select {
					case c.packets <- p:
					case <-c.done:
						return
					}
				}
			}
		}
	}()
	go func() {
		for {
			select {
			case <-c.done:
				return
			case conn := <-nt.StreamCh():
				if c.cut.Load() {
					conn.Close()
					continue
				}
				select {
				case c.streams <- conn:
				case <-c.done:
					conn.Close()
					return
				}
			}
		}
	}()
	return c, nt.GetAutoBindPort()
}

func (c *cuttable) PacketCh() <-chan *memberlist.Packet { return c.packets }
func (c *cuttable) StreamCh() <-chan net.Conn           { return c.streams }

func (c *cuttable) WriteTo(b []byte, addr string) (time.Time, error) {
	if c.cut.Load() {
		return time.Now(), nil // lost on the way
	}
	return c.NetTransport.WriteTo(b, addr)
}

func (c *cuttable) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, errors.New("cut off")
	}
	return c.NetTransport.DialTimeout(addr, timeout)
}

// TestPartitionHealKeepsOneLeader: the leader is cut off; the others
// declare it dead and elect another with a higher term, while the cut-off
// leader still leads (unfenced, as documented). When the cut heals, the
// higher term keeps the election and the old leader's Done closes.
func TestPartitionHealKeepsOneLeader(t *testing.T) {
	leakcheck.Register(t)
	name, seedAddr := seed(t)
	var cs []*gossip.Coordinator
	var cuts []*cuttable
	var nodes []cluster.Node
	for range 3 {
		tr, port := newCuttable(t)
		cfg := testConfig(name, seedAddr)
		cfg.BindPort, cfg.Transport = port, tr
		c, n := registered(t, cfg)
		cs, cuts, nodes = append(cs, c), append(cuts, tr), append(nodes, n)
	}
	for _, c := range cs {
		clusterwait.WaitUntil(t, 5*time.Second, "every candidate in every view", func() bool {
			ns, _ := c.QueryRemoteNodes(context.Background())
			return len(ns) == 3
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wins := campaignAll(ctx, cs, "heal")
	first := nextWin(t, wins, 30*time.Second, "the first leader")
	cuts[first.who].cut.Store(true)
	var second win
	select {
	case second = <-wins:
	case <-time.After(30 * time.Second):
		for i, c := range cs {
			ns, _ := c.QueryRemoteNodes(context.Background())
			t.Logf("member %d (%s) sees %v", i, nodes[i].ID, clusterwait.IDs(ns))
		}
		t.Fatalf("the others elected nobody within 30s of cutting the leader (%d) off", first.who)
	}
	if second.lead.Term() <= first.lead.Term() {
		t.Fatalf("the new leader's term %d is not above the cut-off leader's %d", second.lead.Term(), first.lead.Term())
	}
	if first.lead.Err() != nil {
		t.Logf("the cut-off leader stepped down by itself: %v", first.lead.Err())
	}
	healed := time.Now()
	cuts[first.who].cut.Store(false)
	select {
	case <-first.lead.Done():
		if !errors.Is(first.lead.Err(), cluster.ErrSessionLost) {
			t.Errorf("the old leader's Err: %v, want ErrSessionLost", first.lead.Err())
		}
		t.Logf("the old leader (term %d) stepped down %v after the heal; term %d keeps the election", first.lead.Term(), time.Since(healed).Round(time.Millisecond), second.lead.Term())
	case <-time.After(30 * time.Second):
		t.Fatal("the old leader still leads 30s after the heal")
	}
	if second.lead.Err() != nil {
		t.Fatalf("the new leader lost the election at the heal: %v", second.lead.Err())
	}
	want := cluster.Leader{ID: nodes[second.who].ID, Term: second.lead.Term()}
	for i, c := range cs {
		leaders := c.Observe(ctx, "heal")
		deadline := time.After(10 * time.Second)
		for l := (cluster.Leader{}); l != want; {
			select {
			case l = <-leaders:
			case <-deadline:
				t.Fatalf("member %d observes %+v, want %+v", i, l, want)
			}
		}
	}
}

func (c *cuttable) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if c.cut.Load() {
		return time.Now(), nil
	}
	return c.NetTransport.WriteToAddress(b, a)
}

func (c *cuttable) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, errors.New("cut off")
	}
	return c.NetTransport.DialAddressTimeout(a, timeout)
}
