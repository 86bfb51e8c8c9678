package nacos

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
)

// fakeNaming records registrations and lists instances; every other
// method of the SDK's interface is left nil and would panic if called.
type fakeNaming struct {
	naming_client.INamingClient
	mu         sync.Mutex
	registered []vo.RegisterInstanceParam
	refuse     bool
	fail       error
	instances  []model.Instance
}

func (f *fakeNaming) ServerHealthy() bool { return true }

func (f *fakeNaming) SelectAllInstances(vo.SelectAllInstancesParam) ([]model.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.instances, nil
}

func (f *fakeNaming) RegisterInstance(p vo.RegisterInstanceParam) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registered = append(f.registered, p)
	return !f.refuse, f.fail
}

func (f *fakeNaming) registrations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.registered)
}

func newFakeCoordinator(t *testing.T, f *fakeNaming) *Coordinator {
	c := &Coordinator{cfg: DefaultConfig(), opts: backend.NewOptions(), client: f}
	c.life.Init("nacos", registrar{c}, time.Second)
	c.ctx = c.life.Context()
	t.Cleanup(func() { _ = c.life.Close(nil) })
	return c
}

// Self missing from one push may be the server catching up; missing from two
// checks in a row, it is registered again, once, and counted. The count of
// misses starts over after a registration and whenever self is seen.
func TestCheckSelfRegistersAgainAfterTwoMisses(t *testing.T) {
	f := &fakeNaming{}
	c := newFakeCoordinator(t, f)
	self := cluster.Node{ID: "self", Address: cluster.Address{Host: "10.0.0.1", Port: 11800}}
	other := cluster.Node{ID: "other", Address: cluster.Address{Host: "10.0.0.2", Port: 11800}}
	c.life.View.Publish([]cluster.Node{other}, self.ID)

	// Unbuffered: a send returns once the previous tick has been handled.
	ticks := make(chan time.Time)
	done := make(chan struct{})
	go func() { defer close(done); c.checkSelf(c.ctx, self, ticks) }()
	settled := func() { time.Sleep(50 * time.Millisecond) } // lets a tick that should do nothing finish
	registrations := func(want int, after string) {
		t.Helper()
		if n := f.registrations(); n != want {
			t.Fatalf("%d registrations after %s, want %d", n, after, want)
		}
	}

	ticks <- time.Now()
	settled()
	registrations(0, "one check found self missing")
	ticks <- time.Now()
	clusterwait.WaitUntil(t, 5*time.Second, "a registration after two misses", func() bool { return f.registrations() == 1 })
	if got := c.Stats().Reregistrations; got != 1 {
		t.Fatalf("Reregistrations = %d, want 1", got)
	}
	if p := f.registered[0]; p.Metadata[IDKey] != "self" || p.Ip != "10.0.0.1" || p.Port != 11800 || !p.Ephemeral {
		t.Fatalf("registered %+v, want self's ephemeral instance", p)
	}

	ticks <- time.Now()
	settled()
	registrations(1, "one miss after registering again")

	c.life.View.Publish([]cluster.Node{other, self}, self.ID)
	ticks <- time.Now()
	ticks <- time.Now() // self seen twice: the misses start over
	settled()           // the second look at the view is done before it changes
	c.life.View.Publish([]cluster.Node{other}, self.ID)
	ticks <- time.Now()
	settled()
	registrations(1, "one miss after self was seen again")
	_ = c.life.Close(nil)
	<-done
}

// A failed registration is not counted, and is tried again on the next tick
// rather than after two more misses.
func TestCheckSelfRetriesAFailedRegistration(t *testing.T) {
	f := &fakeNaming{fail: errors.New("server unavailable")}
	c := newFakeCoordinator(t, f)
	self := cluster.Node{ID: "self", Address: cluster.Address{Host: "10.0.0.1", Port: 11800}}
	c.life.View.Publish(nil, self.ID)
	ticks := make(chan time.Time)
	done := make(chan struct{})
	go func() { defer close(done); c.checkSelf(c.ctx, self, ticks) }()
	ticks <- time.Now()
	ticks <- time.Now()
	clusterwait.WaitUntil(t, 5*time.Second, "a first attempt", func() bool { return f.registrations() == 1 })
	ticks <- time.Now()
	clusterwait.WaitUntil(t, 5*time.Second, "a second attempt on the next tick", func() bool { return f.registrations() == 2 })
	if got := c.Stats().Reregistrations; got != 0 {
		t.Fatalf("Reregistrations = %d after failed attempts, want 0", got)
	}
	_ = c.life.Close(nil)
	<-done
}

// A registration the server answers with false and no error is a failure,
// not a success: it is reported, not counted.
func TestRefusedRegistrationIsAnError(t *testing.T) {
	f := &fakeNaming{refuse: true}
	c := newFakeCoordinator(t, f)
	err := c.register(context.Background(), cluster.Node{ID: "self", Address: cluster.Address{Host: "10.0.0.1", Port: 11800}})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("register answered false: err = %v, want one saying the server refused it", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("register: %v", err)
	}
}

func TestSelfCheckDefault(t *testing.T) {
	if got := (Config{}).selfCheck(); got != 5*time.Second {
		t.Fatalf("default self check %s, want 5s", got)
	}
	if got := (Config{SelfCheck: 2 * time.Second}).selfCheck(); got != 2*time.Second {
		t.Fatalf("self check %s, want the configured 2s", got)
	}
}

// The public namespace is the SDK's empty namespace ID; any other is passed.
func TestNamespaceID(t *testing.T) {
	for ns, want := range map[string]string{"public": "", "": "", "dev": "dev"} {
		if got := (Config{Namespace: ns}).namespaceID(); got != want {
			t.Errorf("namespace %q → ID %q, want %q", ns, got, want)
		}
	}
}

// A context path is passed to every server; none keeps the SDK's default.
// Each server is listed serverRepeats times (the SDK's reconnect sleep grows
// per round of the list), in the configured order.
func TestServerConfigs(t *testing.T) {
	servers := []server{{host: "10.0.0.1", port: 8848}, {host: "10.0.0.2", port: 8848}}
	for _, sc := range serverConfigs(servers, "/custom") {
		if sc.ContextPath != "/custom" {
			t.Fatalf("context path %q, want /custom", sc.ContextPath)
		}
	}
	sc := serverConfigs(servers, "")
	if len(sc) != 2*serverRepeats {
		t.Fatalf("%d server configs, want each of 2 servers %d times", len(sc), serverRepeats)
	}
	for i, c := range sc {
		want := servers[i/serverRepeats]
		if c.IpAddr != want.host || c.Port != want.port || c.ContextPath != "/nacos" {
			t.Fatalf("server config %d = %+v, want %s:%d on the SDK's default /nacos", i, c, want.host, want.port)
		}
	}
	if serverRepeats < 10 {
		t.Fatalf("serverRepeats = %d: the SDK's reconnect sleep would again grow past a second within a minute", serverRepeats)
	}
}

// A healthy instance carrying self's ID at another address is another live
// process: registering is refused, naming both addresses, and nothing is
// registered. At self's own address it is self restarted, and registering
// goes ahead; so it does when the holder is unhealthy (its client is gone).
func TestRegisterRefusesAHeldID(t *testing.T) {
	self := cluster.Node{ID: "self", Address: cluster.Address{Host: "10.0.0.1", Port: 11800}}
	holder := model.Instance{Ip: "10.0.0.9", Port: 11800, Healthy: true, Enable: true, Weight: 1, Metadata: map[string]string{IDKey: "self"}}
	f := &fakeNaming{instances: []model.Instance{holder}}
	c := newFakeCoordinator(t, f)
	err := c.register(context.Background(), self)
	if !errors.Is(err, cluster.ErrDuplicateID) || !strings.Contains(err.Error(), "10.0.0.9:11800") || !strings.Contains(err.Error(), "10.0.0.1:11800") {
		t.Fatalf("register = %v; want cluster.ErrDuplicateID naming both addresses", err)
	}
	if f.registrations() != 0 {
		t.Fatal("a refused ID was registered anyway")
	}

	f.mu.Lock()
	f.instances[0].Healthy = false
	f.mu.Unlock()
	if err := c.register(context.Background(), self); err != nil {
		t.Fatalf("register with the holder unhealthy: %v", err)
	}
	f.mu.Lock()
	f.instances[0].Healthy, f.instances[0].Ip = true, "10.0.0.1"
	f.mu.Unlock()
	if err := c.register(context.Background(), self); err != nil {
		t.Fatalf("register over an instance at self's own address: %v", err)
	}
}
