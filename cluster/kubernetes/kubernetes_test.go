package kubernetes_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/clustertest"
	"github.com/herd-go/herd/cluster/kubernetes"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/configcheck"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
	"github.com/herd-go/herd/internal/testsupport/testenv"
	"github.com/herd-go/herd/internal/testsupport/testserver"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func restConfig(host, token string) *rest.Config {
	return &rest.Config{Host: host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}

// env is one coordinator's view of its pod's environment, set when the
// harness registers a node: a kubelet would have set HOSTNAME.
type env struct {
	mu   sync.Mutex
	vars map[string]string
}

func (e *env) set(k, v string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.vars == nil {
		e.vars = map[string]string{}
	}
	e.vars[k] = v
}

func (e *env) lookup(k string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.vars[k]
	return v, ok
}

// fixture is a namespace on a real API server, with helpers that play the
// kubelet's part.
type fixture struct {
	t      *testing.T
	admin  k8s.Interface
	host   string
	token  string
	ns     string
	labels map[string]string
	envs   sync.Map // *kubernetes.Coordinator → *env
}

func newFixture(t *testing.T, host, token string) *fixture {
	rc := restConfig(host, token)
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	admin, err := k8s.NewForConfigAndClient(rc, hc)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, admin: admin, host: host, token: token, ns: "herd-" + cluster.NewID()[:10], labels: map[string]string{"app": "herd", "tier": "backend"}}
	if _, err := admin.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) config() kubernetes.Config {
	cfg := kubernetes.DefaultConfig()
	cfg.Namespace = f.ns
	cfg.LabelSelector = "app=herd,tier in (backend,worker),!canary"
	cfg.Timeout = 5 * time.Second
	cfg.ElectionTTL, cfg.ElectionRenewPeriod = electionTTL, electionRenew
	return cfg
}

// The election tests' Lease timing: short, for quick crash takeovers.
const (
	electionTTL   = 3 * time.Second
	electionRenew = 500 * time.Millisecond
)

func (f *fixture) coordinator(t *testing.T, cfg kubernetes.Config, token string) *kubernetes.Coordinator {
	t.Helper()
	return f.coordinatorAt(t, cfg, f.host, token)
}

// coordinatorAt is a coordinator that reaches the API server at host.
func (f *fixture) coordinatorAt(t *testing.T, cfg kubernetes.Config, host, token string) *kubernetes.Coordinator {
	t.Helper()
	e := &env{}
	cfg.REST = restConfig(host, token)
	c, err := kubernetes.New(context.Background(), cfg, cluster.WithLogger(quiet), cluster.WithLookupEnv(e.lookup))
	if err != nil {
		t.Fatalf("kubernetes.New: %v", err)
	}
	f.envs.Store(c, e)
	return c
}

// runPod creates a pod for n and reports it Running and Ready at n's
// address, as a scheduler and kubelet would.
func (f *fixture) runPod(t *testing.T, n cluster.Node, labels map[string]string, portName string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: n.ID, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "herd",
			Ports: []corev1.ContainerPort{{Name: portName, ContainerPort: int32(n.Address.Port)}},
		}}},
	}
	created, err := f.admin.CoreV1().Pods(f.ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = corev1.PodStatus{
		Phase:      corev1.PodRunning,
		PodIP:      n.Address.Host,
		PodIPs:     []corev1.PodIP{{IP: n.Address.Host}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
	}
	updated, err := f.admin.CoreV1().Pods(f.ns).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return updated
}

func (f *fixture) deletePod(name string) error {
	zero := int64(0)
	return f.admin.CoreV1().Pods(f.ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
}

func (f *fixture) harness(cfg kubernetes.Config) clustertest.Harness {
	return clustertest.Harness{
		NewCoordinator: func(t *testing.T) cluster.Coordinator { return f.coordinator(t, cfg, f.token) },
		SharedIDs: "not applicable: herd registers nothing on Kubernetes; a node's ID is its pod's name or UID, " +
			"which the API server makes unique, and its address is the pod's own IP",
		Register: func(t *testing.T, c cluster.Coordinator, n cluster.Node) error {
			// Idempotent: the suite may retry after a server restart.
			if _, err := f.admin.CoreV1().Pods(f.ns).Get(context.Background(), n.ID, metav1.GetOptions{}); err != nil {
				f.runPod(t, n, f.labels, "grpc")
			}
			if e, ok := f.envs.Load(c); ok {
				e.(*env).set("HOSTNAME", n.ID)
			}
			return c.RegisterRemote(context.Background(), n)
		},
		GracefulLeave: "herd writes nothing on Kubernetes: a pod leaves when it is deleted or stops being Ready, with no mark first",
		Leave: func(t *testing.T, c cluster.Coordinator, n cluster.Node) error {
			return errors.Join(f.deletePod(n.ID), c.Close())
		},
		WriteMalformed: func(t *testing.T) {
			// A member pod with no container port named "grpc": nothing to dial.
			f.runPod(t, clusterwait.NewNode(), f.labels, "metrics")
		},
		Malformed: func(c cluster.Coordinator) uint64 { return c.(*kubernetes.Coordinator).Stats().Malformed },
		// A member pod of another process; deleted as an operator would,
		// pod by pod.
		PutForeign: func(t *testing.T, n cluster.Node) {
			f.runPod(t, n, f.labels, "grpc")
			t.Cleanup(func() { _ = f.deletePod(n.ID) })
		},
		DeleteForeign: func(t *testing.T, nodes []cluster.Node) {
			for _, n := range nodes {
				if err := f.deletePod(n.ID); err != nil {
					t.Fatal(err)
				}
			}
		},
		Within: 2 * time.Second,
		Election: &clustertest.Election{
			Partitioned: func(t *testing.T) (cluster.Coordinator, func()) {
				proxy := testserver.StartProxy(t, strings.TrimPrefix(f.host, "https://"))
				pcfg := cfg
				pcfg.Timeout = time.Second
				return f.coordinatorAt(t, pcfg, "https://"+proxy.Addr, f.token), proxy.Partition
			},
			// A candidate takes the Lease a TTL after it first saw its last
			// renewal, which it reads every renew period.
			TakeoverWithin: electionTTL + electionRenew + time.Second,
			// A pod is a member while it is Ready: a crashed one's kubelet
			// would say otherwise; here the pod is deleted.
			Gone: func(t *testing.T, n cluster.Node) { _ = f.deletePod(n.ID) },
		},
	}
}

// startKube starts a kube-apiserver of the test's own, or, with
// HERD_TEST_KUBE_HOST set (compose.yaml), uses that server and its tokens.
func startKube(t *testing.T) *testserver.Kube {
	if host := os.Getenv("HERD_TEST_KUBE_HOST"); host != "" {
		return &testserver.Kube{Host: host,
			AdminToken:  testenv.Require(t, "HERD_TEST_KUBE_ADMIN_TOKEN", "the external API server's admin token"),
			ReaderToken: testenv.Require(t, "HERD_TEST_KUBE_READER_TOKEN", "the external API server's reader token")}
	}
	apiserver := testenv.Require(t, "HERD_KUBE_APISERVER_BIN", "a kube-apiserver binary")
	etcdBin := testenv.Require(t, "HERD_ETCD_BIN", "an etcd binary for kube-apiserver")
	return testserver.StartKube(t, apiserver, etcdBin)
}

func TestKubernetes(t *testing.T) {
	kube := startKube(t)
	// client-go shares one transport between all these clients; a watch's
	// connection goes idle only after the informer stops.
	shared, err := rest.HTTPClientFor(restConfig(kube.Host, kube.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	// One HTTP/2 connection of that shared transport can outlive every close
	// (it is never idle when closed); its read loop is client-go's, not
	// herd's, so it is the one goroutine this check ignores. The informers,
	// reflectors and herd's own goroutines are all still checked.
	leakcheck.RegisterWith(t, shared.CloseIdleConnections,
		goleak.IgnoreAnyFunction("golang.org/x/net/http2.(*ClientConn).readLoop"))
	f := newFixture(t, kube.Host, kube.AdminToken)

	t.Run("Conformance", func(t *testing.T) {
		h := f.harness(f.config())
		h.Recovery = func(t *testing.T) clustertest.RecoveryTarget {
			// A server of the test's own: its apiserver is SIGKILLed and
			// restarted on the same etcd.
			own := startKube(t)
			if own.APIServer == nil {
				t.Skip("an external API server (HERD_TEST_KUBE_HOST) cannot be killed and restarted by the test")
			}
			g := newFixture(t, own.Host, own.AdminToken)
			rh := g.harness(g.config())
			return clustertest.RecoveryTarget{
				NewCoordinator: rh.NewCoordinator,
				Register:       rh.Register,
				Kill:           own.APIServer.Kill,
				Restart:        own.APIServer.Start,
			}
		}
		h.RecoverWithin = 30 * time.Second
		h.ResumeWithin = time.Second
		clustertest.Run(t, h)
	})

	t.Run("SetBasedSelectorAndReadiness", func(t *testing.T) {
		g := newFixture(t, kube.Host, kube.AdminToken)
		c := g.coordinator(t, g.config(), kube.AdminToken)
		defer c.Close()
		w := c.Watch(context.Background())
		in1, in2, canary, other, notReady := clusterwait.NewNode(), clusterwait.NewNode(), clusterwait.NewNode(), clusterwait.NewNode(), clusterwait.NewNode()
		g.runPod(t, in1, map[string]string{"app": "herd", "tier": "backend"}, "grpc")
		g.runPod(t, in2, map[string]string{"app": "herd", "tier": "worker"}, "grpc")
		g.runPod(t, canary, map[string]string{"app": "herd", "tier": "backend", "canary": "yes"}, "grpc")
		g.runPod(t, other, map[string]string{"app": "herd", "tier": "frontend"}, "grpc")
		pod := g.runPod(t, notReady, map[string]string{"app": "herd", "tier": "backend"}, "grpc")
		pod.Status.Conditions[0].Status = corev1.ConditionFalse
		if _, err := g.admin.CoreV1().Pods(g.ns).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		got := clusterwait.WaitFor(t, w, 5*time.Second, "the two matching ready pods only", func(ns []cluster.Node) bool {
			return len(ns) == 2 && clusterwait.Has(ns, in1.ID) && clusterwait.Has(ns, in2.ID)
		})
		for _, n := range got {
			if n.Address.Host != "127.0.0.1" || (n.Address.Port != in1.Address.Port && n.Address.Port != in2.Address.Port) {
				t.Errorf("node %+v: want the pod IP and its named port", n)
			}
		}
		// Ready again: it joins.
		pod, _ = g.admin.CoreV1().Pods(g.ns).Get(context.Background(), notReady.ID, metav1.GetOptions{})
		pod.Status.Conditions[0].Status = corev1.ConditionTrue
		if _, err := g.admin.CoreV1().Pods(g.ns).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		clusterwait.WaitFor(t, w, 5*time.Second, "the pod that became ready", func(ns []cluster.Node) bool { return clusterwait.Has(ns, notReady.ID) })
	})

	// A pod being deleted stays Running and Ready until its kubelet stops
	// it; it must leave every view the moment deletionTimestamp is set. A
	// finalizer keeps it terminating here, where no kubelet runs.
	t.Run("TerminatingPodLeavesAtOnce", func(t *testing.T) {
		g := newFixture(t, kube.Host, kube.AdminToken)
		c := g.coordinator(t, g.config(), kube.AdminToken)
		defer c.Close()
		stays, goes := clusterwait.NewNode(), clusterwait.NewNode()
		g.runPod(t, stays, g.labels, "grpc")
		pod := g.runPod(t, goes, g.labels, "grpc")
		pods := g.admin.CoreV1().Pods(g.ns)
		pod.Finalizers = []string{"herd.test/hold"}
		if _, err := pods.Update(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			p, err := pods.Get(context.Background(), goes.ID, metav1.GetOptions{})
			if err == nil {
				p.Finalizers = nil
				_, _ = pods.Update(context.Background(), p, metav1.UpdateOptions{})
			}
		})
		w := c.Watch(context.Background())
		clusterwait.WaitFor(t, w, 5*time.Second, "both pods", func(ns []cluster.Node) bool {
			return clusterwait.Has(ns, stays.ID) && clusterwait.Has(ns, goes.ID)
		})
		grace := int64(300)
		if err := pods.Delete(context.Background(), goes.ID, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
			t.Fatal(err)
		}
		clusterwait.WaitFor(t, w, 2*time.Second, "the terminating pod gone", func(ns []cluster.Node) bool {
			return clusterwait.Has(ns, stays.ID) && !clusterwait.Has(ns, goes.ID)
		})
		p, err := pods.Get(context.Background(), goes.ID, metav1.GetOptions{})
		if err != nil || p.DeletionTimestamp == nil || p.Status.Phase != corev1.PodRunning {
			t.Fatalf("the pod should still be there, Running and terminating: %v, %+v", err, p)
		}
		nodes, err := c.QueryRemoteNodes(context.Background())
		if err != nil || clusterwait.Has(nodes, goes.ID) {
			t.Fatalf("query = %v, %v; want the terminating pod left out", clusterwait.IDs(nodes), err)
		}
	})

	t.Run("NumericPort", func(t *testing.T) {
		g := newFixture(t, kube.Host, kube.AdminToken)
		cfg := g.config()
		cfg.Port = 9999 // no named port needed
		c := g.coordinator(t, cfg, kube.AdminToken)
		defer c.Close()
		n := clusterwait.NewNode()
		g.runPod(t, n, g.labels, "metrics")
		got := clusterwait.WaitFor(t, c.Watch(context.Background()), 5*time.Second, "the pod", func(ns []cluster.Node) bool { return clusterwait.Has(ns, n.ID) })
		if got[0].Address.Port != 9999 {
			t.Fatalf("address %s, want port 9999 from cluster.kubernetes.port", got[0].Address)
		}
		if c.Stats().Malformed != 0 {
			t.Fatalf("stats %+v", c.Stats())
		}
	})

	t.Run("SelfByUIDAndNameCheck", func(t *testing.T) {
		g := newFixture(t, kube.Host, kube.AdminToken)
		cfg := g.config()
		e := &env{}
		cfg.REST = restConfig(g.host, kube.AdminToken)
		c, err := kubernetes.New(context.Background(), cfg, cluster.WithLogger(quiet), cluster.WithLookupEnv(e.lookup))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		self := clusterwait.NewNode()
		pod := g.runPod(t, self, g.labels, "grpc")
		if err := c.RegisterRemote(context.Background(), self); err == nil || !strings.Contains(err.Error(), cfg.UIDEnvName) {
			t.Fatalf("no UID and no HOSTNAME: err = %v", err)
		}
		e.set(cfg.UIDEnvName, string(pod.UID))
		wrong := self
		wrong.ID = "not-the-pod-name"
		if err := c.RegisterRemote(context.Background(), wrong); err == nil || !strings.Contains(err.Error(), "SW_CLUSTER_NODE_ID") {
			t.Fatalf("ID other than the pod name: err = %v", err)
		}
		if err := c.RegisterRemote(context.Background(), self); err != nil {
			t.Fatal(err)
		}
		nodes, err := c.QueryRemoteNodes(context.Background())
		if err != nil || len(nodes) != 1 || !nodes[0].Self {
			t.Fatalf("view %v, err %v", clusterwait.IDs(nodes), err)
		}
	})

	t.Run("MinimalRBAC", func(t *testing.T) {
		g := newFixture(t, kube.Host, kube.AdminToken)
		cfg := g.config()
		// Without a binding the reader is refused at start-up, with a message that says what to grant.
		cfg.REST = restConfig(g.host, kube.ReaderToken)
		_, err := kubernetes.New(context.Background(), cfg, cluster.WithLogger(quiet))
		if err == nil || !strings.Contains(err.Error(), "get, list and watch") {
			t.Fatalf("without RBAC: err = %v", err)
		}
		bindPodReader(t, g, "get", "list", "watch")
		c := g.coordinator(t, cfg, kube.ReaderToken)
		defer c.Close()
		self := clusterwait.NewNode()
		g.runPod(t, self, g.labels, "grpc")
		e, _ := g.envs.Load(c)
		e.(*env).set("HOSTNAME", self.ID)
		if err := c.RegisterRemote(context.Background(), self); err != nil {
			t.Fatalf("register with only get/list/watch on pods: %v", err)
		}
		clusterwait.WaitFor(t, c.Watch(context.Background()), 5*time.Second, "self", func(ns []cluster.Node) bool { return clusterwait.Has(ns, self.ID) })
		if _, err := c.QueryRemoteNodes(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Elections need get, create and update on Leases; without them a
		// campaign fails at once and names the grant.
		if _, err := c.Campaign(context.Background(), "minimal"); err == nil || !strings.Contains(err.Error(), "grant get, create and update on leases") {
			t.Fatalf("campaign without a Lease grant: err = %v", err)
		}
		bind(t, g, "herd-lease-holder", rbacv1.PolicyRule{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}})
		l, err := c.Campaign(context.Background(), "minimal")
		if err != nil {
			t.Fatalf("campaign with get, create and update on leases: %v", err)
		}
		if err := l.Resign(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Records (the shard package's slot table) need get, create, update
		// and watch on ConfigMaps; without them a write names the grant.
		if _, err := c.PutRecord(context.Background(), "minimal", []byte("x"), ""); err == nil || !strings.Contains(err.Error(), "grant get, create, update and watch on configmaps") {
			t.Fatalf("a record without a ConfigMap grant: err = %v", err)
		}
		bind(t, g, "herd-record-keeper", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "create", "update", "watch"}})
		if _, err := c.PutRecord(context.Background(), "minimal", []byte("x"), ""); err != nil {
			t.Fatalf("a record written with get, create, update and watch on configmaps: %v", err)
		}
		versions := c.WatchRecord(t.Context(), "minimal")
		if v := <-versions; v == "" {
			t.Error("WatchRecord with the minimal grant did not see the record")
		}
	})

	// A token that may list pods but not watch them is refused at start-up
	// too: the view would otherwise stay frozen at its first list.
	t.Run("ListWithoutWatchRefused", func(t *testing.T) {
		g := newFixture(t, kube.Host, kube.AdminToken)
		cfg := g.config()
		cfg.REST = restConfig(g.host, kube.ReaderToken)
		bindPodReader(t, g, "get", "list")
		_, err := kubernetes.New(context.Background(), cfg, cluster.WithLogger(quiet))
		if err == nil || !strings.Contains(err.Error(), "watching pods") || !strings.Contains(err.Error(), "get, list and watch") {
			t.Fatalf("err = %v, want watching refused, naming the verbs to grant", err)
		}
	})

	// A node cut off from the API server keeps its last view (queries fail)
	// and, once the network heals, catches up with what changed meanwhile
	// within about a second: the reflector retries at most a second apart.
	t.Run("PartitionedNodeKeepsItsViewAndCatchesUp", func(t *testing.T) {
		g := newFixture(t, kube.Host, kube.AdminToken)
		proxy := testserver.StartProxy(t, strings.TrimPrefix(kube.Host, "https://"))
		cfg := g.config()
		cfg.Timeout = time.Second
		cfg.REST = restConfig("https://"+proxy.Addr, kube.AdminToken)
		c, err := kubernetes.New(context.Background(), cfg, cluster.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		stays, goes, comes := clusterwait.NewNode(), clusterwait.NewNode(), clusterwait.NewNode()
		g.runPod(t, stays, g.labels, "grpc")
		g.runPod(t, goes, g.labels, "grpc")
		w := c.Watch(context.Background())
		clusterwait.WaitFor(t, w, 5*time.Second, "both pods", func(ns []cluster.Node) bool {
			return clusterwait.Has(ns, stays.ID) && clusterwait.Has(ns, goes.ID)
		})

		proxy.Partition()
		if ns, err := c.QueryRemoteNodes(context.Background()); err == nil {
			t.Errorf("a query answered %v while cut off from the API server; want an error", clusterwait.IDs(ns))
		}
		if err := g.deletePod(goes.ID); err != nil {
			t.Fatal(err)
		}
		g.runPod(t, comes, g.labels, "grpc")
		// Long enough for the retries' backoff to reach its cap.
		clusterwait.Keeps(t, w, 2*time.Second, "the last view while cut off", func(ns []cluster.Node) bool {
			return clusterwait.Has(ns, stays.ID) && clusterwait.Has(ns, goes.ID)
		})

		healed := time.Now()
		proxy.Heal()
		clusterwait.WaitFor(t, w, 10*time.Second, "the changes made while cut off", func(ns []cluster.Node) bool {
			return clusterwait.Has(ns, stays.ID) && clusterwait.Has(ns, comes.ID) && !clusterwait.Has(ns, goes.ID)
		})
		took := time.Since(healed)
		t.Logf("caught up %s after the network healed", took.Round(time.Millisecond))
		if took > 1500*time.Millisecond {
			t.Errorf("caught up %s after the network healed, want within 1.5s (retries at most 1s apart, and a list)", took.Round(time.Millisecond))
		}
	})

	t.Run("Kubeconfig", func(t *testing.T) {
		g := newFixture(t, kube.Host, kube.AdminToken)
		cfg := g.config()
		cfg.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
		kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: herd, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: herd, context: {cluster: herd, user: admin}}]
current-context: herd
`, kube.Host, kube.AdminToken)
		if err := os.WriteFile(cfg.Kubeconfig, []byte(kc), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := kubernetes.New(context.Background(), cfg, cluster.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}

// bindPodReader grants herd's documented minimal RBAC to the reader user.
func bindPodReader(t *testing.T, g *fixture, verbs ...string) {
	bind(t, g, "herd-pod-reader", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: verbs})
}

// bind grants the reader user rule in the fixture's namespace and waits
// until the API server's authorizer grants it: RBAC reads Roles and
// RoleBindings through a cache, so a request sent right after the binding
// was created may still be refused (CI saw a list refused 30 ms after).
func bind(t *testing.T, g *fixture, name string, rule rbacv1.PolicyRule) {
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{rule}}
	if _, err := g.admin.RbacV1().Roles(g.ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: testserver.ReaderUser}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
	}
	if _, err := g.admin.RbacV1().RoleBindings(g.ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, verb := range rule.Verbs {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: testserver.ReaderUser,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: g.ns, Verb: verb, Group: rule.APIGroups[0], Resource: rule.Resources[0],
			},
		}}
		clusterwait.WaitUntil(t, 10*time.Second, "RBAC to grant "+verb+" on "+rule.Resources[0], func() bool {
			got, err := g.admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
			return err == nil && got.Status.Allowed
		})
	}
}

func TestBadConfig(t *testing.T) {
	configcheck.ConfigErrors(t, kubernetes.DefaultConfig, func(ctx context.Context, c kubernetes.Config) error {
		_, err := kubernetes.New(ctx, c)
		return err
	}, map[string]configcheck.ConfigCase[kubernetes.Config]{
		"no namespace":     {Mutate: func(c *kubernetes.Config) { c.Namespace = "" }, Key: "cluster.kubernetes.namespace"},
		"bad selector":     {Mutate: func(c *kubernetes.Config) { c.LabelSelector = "app in (" }, Key: "cluster.kubernetes.labelSelector"},
		"empty selector":   {Mutate: func(c *kubernetes.Config) { c.LabelSelector = "" }, Key: "cluster.kubernetes.labelSelector"},
		"no port":          {Mutate: func(c *kubernetes.Config) { c.Port, c.PortName = 0, "" }, Key: "cluster.kubernetes.port"},
		"bad kubeconfig":   {Mutate: func(c *kubernetes.Config) { c.Kubeconfig = "/nonexistent/kubeconfig" }, Key: "cluster.kubernetes.kubeconfig"},
		"negative timeout": {Mutate: func(c *kubernetes.Config) { c.Timeout = -1 }, Key: "cluster.kubernetes.timeout"},
	})
}

func TestOutsideAPodSaysWhatToSet(t *testing.T) {
	_, err := kubernetes.New(context.Background(), kubernetes.DefaultConfig())
	if err == nil || !strings.Contains(err.Error(), "SW_CLUSTER_K8S_KUBECONFIG") {
		t.Fatalf("err = %v", err)
	}
}
