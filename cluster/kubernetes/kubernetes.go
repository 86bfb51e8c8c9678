// Package kubernetes is herd's Kubernetes coordinator (k8s.io/client-go).
//
// The platform does the registering: a pod is a member when it matches the
// label selector in the namespace, is Running, has its Ready condition True,
// has a pod IP and is not being deleted. Membership is pushed by a shared
// informer. A node's ID is its pod name (unique in the namespace, and
// HOSTNAME inside the pod); its address is the pod IP and the configured
// port, or the container port named portName.
//
// RegisterRemote writes nothing: it checks that this process's pod (the pod
// whose UID is in $uidEnvName, else the pod named $HOSTNAME) exists and is
// visible with the given ID. The minimal RBAC is get, list and watch on pods
// in the namespace; docs/backends/kubernetes.md in herd's repository has the Role.
//
// It registers itself under the name "kubernetes":
//
//	import _ "github.com/herd-go/herd/cluster/kubernetes"
package kubernetes

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// section is this backend's part of herd's built-in configuration.
//
//go:embed config.yaml
var section []byte

func init() { backend.Register("kubernetes", section, DefaultConfig, New) }

// Coordinator follows the pods of the cluster through a shared informer.
type Coordinator struct {
	cfg      Config
	opts     cluster.Options
	client   k8s.Interface
	http     *http.Client
	selector labels.Selector
	pods     cache.Store // the reflector's copy of the member pods
	cancel   context.CancelFunc
	done     chan struct{} // closed when the reflector has stopped

	life     backend.Lifecycle
	electCtx context.Context // life's: ends at Close

	malformed backend.Malformed
}

// New connects to the API server, checks that it may list and watch the
// pods (bounded by cfg.Timeout), and starts a reflector that keeps them.
// Of opts, it uses WithLogger (client-go's own log lines go there too),
// WithBackoff (how soon a failed list or watch is tried again; default
// 100ms doubling to 1s), and WithLookupEnv to read $uidEnvName and HOSTNAME
// (cluster.New passes the lookup the configuration was loaded with).
func New(ctx context.Context, cfg Config, opts ...cluster.Option) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sel, _ := cfg.selector()
	o := backend.NewOptions(opts...)
	// The kubeconfig is read before the context is looked at:
	// cluster.Check validates a configuration by calling New with an
	// ended context.
	rc := cfg.REST
	if rc == nil {
		var err error
		if cfg.Kubeconfig != "" {
			rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
			if err != nil {
				return nil, &cluster.ConfigError{Key: key("kubeconfig"), Value: cfg.Kubeconfig, Accepted: "a readable kubeconfig file (SW_CLUSTER_K8S_KUBECONFIG)", Err: err}
			}
		} else if rc, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("kubernetes: not running in a pod (%w); set cluster.kubernetes.kubeconfig (SW_CLUSTER_K8S_KUBECONFIG) to use a kubeconfig file", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kubernetes: not connecting: the context has already ended: %w", err)
	}
	rc = withTimeout(rc, cfg.Timeout)
	httpClient, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	client, err := k8s.NewForConfigAndClient(rc, httpClient)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	c := &Coordinator{cfg: cfg, opts: o, client: client, http: httpClient, selector: sel}
	c.life.Init("kubernetes", registrar{c}, cfg.Timeout)
	c.electCtx = c.life.Context()

	// Fail fast on a wrong address or missing RBAC instead of retrying
	// forever: the reflector needs both verbs, and a token that may list
	// but not watch would otherwise leave the view frozen at its first list.
	if err := c.checkAccess(ctx); err != nil {
		_ = c.life.Close(nil)
		httpClient.CloseIdleConnections()
		return nil, err
	}

	pods := client.CoreV1().Pods(cfg.Namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
			lo.LabelSelector = cfg.LabelSelector
			return pods.List(ctx, lo)
		},
		WatchFuncWithContext: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			lo.LabelSelector = cfg.LabelSelector
			return pods.Watch(ctx, lo)
		},
	}
	store := &podStore{Store: cache.NewStore(cache.MetaNamespaceKeyFunc), changed: c.publish, synced: make(chan struct{})}
	c.pods = store.Store
	// A reflector of our own rather than an informer: an informer cannot
	// be given a backoff (client-go's default grows to 30s), and after an
	// API server outage the watch must resume within about a second.
	bo := o.Backoff.Or(defaultBackoff)
	reflector := cache.NewReflectorWithOptions(lw, &corev1.Pod{}, store, cache.ReflectorOptions{
		Name:         "herd/kubernetes pods in " + cfg.Namespace,
		ResyncPeriod: cfg.Resync,
		Backoff:      reflectorBackoff(bo),
	})
	runCtx, stop := context.WithCancel(klog.NewContext(context.Background(), logr.FromSlogHandler(o.Logger.Handler())))
	c.cancel, c.done = stop, make(chan struct{})
	go func() {
		defer close(c.done)
		reflector.RunWithContext(runCtx)
	}()
	timeout := time.NewTimer(cfg.Timeout)
	defer timeout.Stop()
	select {
	case <-store.synced:
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("kubernetes: the context ended before the pods were listed (check cluster.kubernetes.kubeconfig / SW_CLUSTER_K8S_KUBECONFIG, and that the API server answers): %w", ctx.Err())
	case <-timeout.C:
		c.Close()
		return nil, fmt.Errorf("kubernetes: the pods were not listed within %s (cluster.kubernetes.timeout)", cfg.Timeout)
	}
	return c, nil
}

// withTimeout copies rc, with d as its timeout unless it has one.
func withTimeout(rc *rest.Config, d time.Duration) *rest.Config {
	rc = rest.CopyConfig(rc)
	if rc.Timeout == 0 {
		rc.Timeout = d
	}
	// client-go's default client-side limit (5 requests a second, bursts
	// of 10) would queue an election's renewals and reads behind each other:
	// a resignation then took 600ms to hand over. The API server applies its
	// own fairness limits regardless.
	if rc.QPS == 0 && rc.RateLimiter == nil {
		rc.QPS, rc.Burst = 50, 100
	}
	return rc
}

// reflectorBackoff is bo as client-go's reflector takes it: delays in
// [d, 2d) with d doubling from Initial/2 up to Max/2, so at most Max.
func reflectorBackoff(bo cluster.Backoff) *wait.Backoff {
	return &wait.Backoff{Duration: bo.Initial / 2, Factor: 2, Jitter: 1, Cap: bo.Max / 2, Steps: math.MaxInt32}
}

// defaultBackoff bounds the reflector's retries: after an outage the API
// server is listed and watched again within a second of answering.
var defaultBackoff = cluster.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}

// checkAccess lists one pod and opens, then closes, a watch: the two calls
// the reflector makes.
func (c *Coordinator) checkAccess(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	pods := c.client.CoreV1().Pods(c.cfg.Namespace)
	list, err := pods.List(cctx, metav1.ListOptions{LabelSelector: c.cfg.LabelSelector, Limit: 1})
	if err == nil {
		var w watch.Interface
		w, err = pods.Watch(cctx, metav1.ListOptions{LabelSelector: c.cfg.LabelSelector, ResourceVersion: list.ResourceVersion})
		if err == nil {
			w.Stop()
			return nil
		}
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("kubernetes: watching pods in namespace %q is forbidden, though listing them is allowed: grant get, list and watch on pods there (see docs/backends/kubernetes.md, RBAC): %w", c.cfg.Namespace, err)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("kubernetes: the context ended before the API server answered (check cluster.kubernetes.kubeconfig / SW_CLUSTER_K8S_KUBECONFIG): %w", ctx.Err())
	}
	return explain(err, c.cfg)
}

// podStore is the reflector's store: every change to it publishes the view,
// and the first full list, once published, marks it synced.
type podStore struct {
	cache.Store
	changed  func()
	synced   chan struct{}
	syncOnce sync.Once
}

func (s *podStore) Add(obj any) error    { return s.after(s.Store.Add(obj)) }
func (s *podStore) Update(obj any) error { return s.after(s.Store.Update(obj)) }
func (s *podStore) Delete(obj any) error { return s.after(s.Store.Delete(obj)) }
func (s *podStore) Resync() error        { return s.after(nil) } // the periodic safety net

func (s *podStore) Replace(list []any, rv string) error {
	err := s.after(s.Store.Replace(list, rv))
	s.syncOnce.Do(func() { close(s.synced) })
	return err
}

func (s *podStore) after(err error) error {
	s.changed()
	return err
}

// explain turns API errors into messages that say what to fix.
func explain(err error, cfg Config) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("kubernetes: listing pods in namespace %q is forbidden: grant get, list and watch on pods there (see docs/backends/kubernetes.md, RBAC): %w", cfg.Namespace, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("kubernetes: the API server refused the credentials: %w", err)
	case strings.Contains(err.Error(), "client rate limiter"):
		// client-go queues requests client-side (rest.Config QPS and Burst,
		// 5 a second by default): the server was never asked.
		return fmt.Errorf("kubernetes: client-go's rate limiter held the request past %s: query less often (the Manager's refresh interval) or raise QPS and Burst (kubernetes.Config.REST): %w", cfg.Timeout, err)
	default:
		return fmt.Errorf("kubernetes: the API server did not answer within %s: %w (check the in-cluster config or cluster.kubernetes.kubeconfig)", cfg.Timeout, err)
	}
}

// member reports whether pod counts, and its node if so. A member pod with
// no port to dial is malformed.
func (c *Coordinator) member(pod *corev1.Pod) (cluster.Node, bool, error) {
	if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" || !ready(pod) {
		return cluster.Node{}, false, nil
	}
	port := c.cfg.Port
	if port == 0 {
		port = namedPort(pod, c.cfg.PortName)
	}
	n := cluster.Node{ID: pod.Name, Address: cluster.Address{Host: pod.Status.PodIP, Port: port}}
	if err := n.Validate(); err != nil {
		if port == 0 {
			err = fmt.Errorf("pod %s has no container port named %q (cluster.kubernetes.portName, or set port)", pod.Name, c.cfg.PortName)
		}
		return cluster.Node{}, false, err
	}
	return n, true, nil
}

func ready(pod *corev1.Pod) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func namedPort(pod *corev1.Pod, name string) int {
	for _, ctr := range pod.Spec.Containers {
		for _, p := range ctr.Ports {
			if p.Name == name {
				return int(p.ContainerPort)
			}
		}
	}
	return 0
}

func (c *Coordinator) nodes(pods []*corev1.Pod, count bool) []cluster.Node {
	nodes := make([]cluster.Node, 0, len(pods))
	present := map[string]bool{}
	for _, pod := range pods {
		if !c.selector.Matches(labels.Set(pod.Labels)) {
			continue
		}
		present[pod.Name] = true
		n, ok, err := c.member(pod)
		if err != nil && count {
			var rv uint64
			_, _ = fmt.Sscan(pod.ResourceVersion, &rv)
			if c.malformed.Report(pod.Name, rv) {
				c.opts.Logger.Warn("herd/kubernetes: skipping a pod with no port to dial", "pod", pod.Name, "err", err)
			}
		}
		if ok {
			nodes = append(nodes, n)
		}
	}
	if count {
		c.malformed.Retain(func(k string) bool { return present[k] })
	}
	return nodes
}

func (c *Coordinator) publish() {
	var pods []*corev1.Pod
	for _, obj := range c.pods.List() {
		if pod, ok := obj.(*corev1.Pod); ok {
			pods = append(pods, pod)
		}
	}
	c.life.View.Publish(c.nodes(pods, true), c.self())
}

func (c *Coordinator) self() string { return c.life.RegisteredID() }

// Logger is the logger the coordinator was given (cluster.WithLogger); a
// Manager or shard group built over it logs there too unless told otherwise.
func (c *Coordinator) Logger() *slog.Logger { return c.opts.Logger }

// Stats returns the coordinator's counters.
func (c *Coordinator) Stats() cluster.Stats { return cluster.Stats{Malformed: c.malformed.Count()} }

// RegisterRemote checks that this process's pod exists and is visible, and
// that self.ID is its name; the platform does the registering, so nothing
// is written.
func (c *Coordinator) RegisterRemote(ctx context.Context, self cluster.Node) error {
	return c.life.RegisterRemote(ctx, self)
}

// registrar is the coordinator's part of backend.Lifecycle: the platform
// registers, so it only checks, and has nothing to keep or remove.
type registrar struct{ c *Coordinator }

func (r registrar) Register(ctx context.Context, self cluster.Node) error {
	c := r.c
	pod, err := c.findSelf(ctx)
	if err != nil {
		return err
	}
	if pod.Name != self.ID {
		return fmt.Errorf("kubernetes: node ID %q is not this pod's name %q: peers know a pod by its name, so set cluster.nodeId (SW_CLUSTER_NODE_ID) to it, e.g. from the downward API field metadata.name", self.ID, pod.Name)
	}
	if !c.selector.Matches(labels.Set(pod.Labels)) {
		return fmt.Errorf("kubernetes: this pod %s does not match the label selector %q, so peers would never see it (cluster.kubernetes.labelSelector / SW_CLUSTER_K8S_LABEL)", pod.Name, c.cfg.LabelSelector)
	}
	return nil
}

// Supervise has nothing to keep: the pod's readiness is its membership.
func (registrar) Supervise(ctx context.Context, _ cluster.Node) { <-ctx.Done() }

// Deregister writes nothing: the platform removes the pod.
func (registrar) Deregister(context.Context, cluster.Node) error { return nil }

// findSelf gets the pod whose UID is in $uidEnvName, else the one named $HOSTNAME.
func (c *Coordinator) findSelf(ctx context.Context) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	pods := c.client.CoreV1().Pods(c.cfg.Namespace)
	if uid, ok := c.opts.LookupEnv(c.cfg.UIDEnvName); ok && uid != "" {
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: c.cfg.LabelSelector})
		if err != nil {
			return nil, explain(err, c.cfg)
		}
		for i := range list.Items {
			if string(list.Items[i].UID) == uid {
				return &list.Items[i], nil
			}
		}
		return nil, fmt.Errorf("kubernetes: no pod with UID %s ($%s) among the pods matching %q in namespace %q", uid, c.cfg.UIDEnvName, c.cfg.LabelSelector, c.cfg.Namespace)
	}
	name, _ := c.opts.LookupEnv("HOSTNAME")
	if name == "" {
		return nil, fmt.Errorf("kubernetes: cannot tell which pod is self: set $%s from the downward API (metadata.uid), or HOSTNAME to the pod name", c.cfg.UIDEnvName)
	}
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("kubernetes: no pod named %q ($HOSTNAME) in namespace %q; set $%s from the downward API (metadata.uid)", name, c.cfg.Namespace, c.cfg.UIDEnvName)
	}
	if err != nil {
		return nil, explain(err, c.cfg)
	}
	return pod, nil
}

// QueryRemoteNodes lists the pods from the API server now, not from the cache.
func (c *Coordinator) QueryRemoteNodes(ctx context.Context) ([]cluster.Node, error) {
	if c.life.Closed() {
		return nil, cluster.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	list, err := c.client.CoreV1().Pods(c.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: c.cfg.LabelSelector})
	if err != nil {
		return nil, explain(err, c.cfg)
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	return backend.Sorted(c.nodes(pods, false), c.self()), nil
}

// Watch pushes the member list after every change the informer sees.
func (c *Coordinator) Watch(ctx context.Context) <-chan []cluster.Node {
	return c.life.View.Subscribe(ctx)
}

// Close stops the informer. The platform removes the pod; nothing is written.
func (c *Coordinator) Close() error {
	return c.life.Close(func() error {
		c.life.Wait() // the election goroutines
		if c.cancel != nil {
			c.cancel()
			<-c.done
		}
		// client-go may share this transport with the process's other
		// clients; closing idle connections only makes them reconnect.
		c.http.CloseIdleConnections()
		return nil
	})
}
