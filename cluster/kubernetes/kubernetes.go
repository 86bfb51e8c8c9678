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
// in the namespace; the repository README's "kubernetes" section has the Role.
//
// It registers itself under the name "kubernetes":
//
//	import _ "github.com/herd-go/herd/cluster/kubernetes"
package kubernetes

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/internal/members"
)

func init() { cluster.RegisterConfigured("kubernetes", DefaultConfig, New) }

// Stats are counters for monitoring.
type Stats struct {
	// Malformed counts member pods with no usable port, once per pod version.
	Malformed uint64
}

// Coordinator follows the pods of the cluster through a shared informer.
type Coordinator struct {
	cfg      Config
	opts     cluster.Options
	client   k8s.Interface
	http     *http.Client
	selector labels.Selector
	factory  informers.SharedInformerFactory
	pods     cache.SharedIndexInformer
	cancel   context.CancelFunc

	mu     sync.Mutex
	selfID string
	closed bool

	view      members.View
	malformed members.Malformed
}

// New connects to the API server, lists the pods once (bounded by
// cfg.Timeout) and starts the informer. Of opts, it uses WithLogger, and
// WithLookupEnv to read $uidEnvName and HOSTNAME (cluster.New passes the
// lookup the configuration was loaded with); client-go does its own retries.
func New(ctx context.Context, cfg Config, opts ...cluster.Option) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sel, _ := cfg.selector()
	o := cluster.NewOptions(opts...)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kubernetes: not connecting: the context has already ended: %w", err)
	}
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
	rc = rest.CopyConfig(rc)
	if rc.Timeout == 0 {
		rc.Timeout = cfg.Timeout
	}
	httpClient, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	client, err := k8s.NewForConfigAndClient(rc, httpClient)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	c := &Coordinator{cfg: cfg, opts: o, client: client, http: httpClient, selector: sel}

	// Fail fast on a wrong address or missing RBAC instead of retrying forever.
	lctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	_, err = client.CoreV1().Pods(cfg.Namespace).List(lctx, metav1.ListOptions{LabelSelector: cfg.LabelSelector, Limit: 1})
	cancel()
	if err != nil {
		httpClient.CloseIdleConnections()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("kubernetes: the context ended before the API server answered: %w", ctx.Err())
		}
		return nil, explain(err, cfg)
	}

	c.factory = informers.NewSharedInformerFactoryWithOptions(client, cfg.Resync,
		informers.WithNamespace(cfg.Namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = cfg.LabelSelector }))
	c.pods = c.factory.Core().V1().Pods().Informer()
	if _, err := c.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.publish() },
		UpdateFunc: func(any, any) { c.publish() },
		DeleteFunc: func(any) { c.publish() },
	}); err != nil {
		return nil, fmt.Errorf("kubernetes: informer: %w", err)
	}
	_ = c.pods.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		c.opts.Logger.Warn("herd/kubernetes: watching pods failed; client-go retries with backoff, keeping the last view", "namespace", cfg.Namespace, "err", err)
	})
	runCtx, stop := context.WithCancel(context.Background())
	c.cancel = stop
	c.factory.Start(runCtx.Done())
	sctx, scancel := context.WithTimeout(ctx, cfg.Timeout)
	defer scancel()
	if !cache.WaitForCacheSync(sctx.Done(), c.pods.HasSynced) {
		c.Close()
		return nil, fmt.Errorf("kubernetes: the pod informer did not sync within %s", cfg.Timeout)
	}
	c.publish()
	return c, nil
}

// explain turns API errors into messages that say what to fix.
func explain(err error, cfg Config) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("kubernetes: listing pods in namespace %q is forbidden: grant get, list and watch on pods there (see README, kubernetes RBAC): %w", cfg.Namespace, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("kubernetes: the API server refused the credentials: %w", err)
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
	for _, obj := range c.pods.GetStore().List() {
		if pod, ok := obj.(*corev1.Pod); ok {
			pods = append(pods, pod)
		}
	}
	c.view.Publish(c.nodes(pods, true), c.self())
}

func (c *Coordinator) self() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.selfID
}

// Stats returns the coordinator's counters.
func (c *Coordinator) Stats() Stats { return Stats{Malformed: c.malformed.Count()} }

// RegisterRemote checks that this process's pod exists and is visible, and
// that self.ID is its name; the platform does the registering, so nothing
// is written.
func (c *Coordinator) RegisterRemote(ctx context.Context, self cluster.Node) error {
	if err := self.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return cluster.ErrClosed
	}
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
	c.mu.Lock()
	c.selfID = self.ID
	c.mu.Unlock()
	c.view.Remark(self.ID)
	return nil
}

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
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
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
	return members.Sorted(c.nodes(pods, false), c.self()), nil
}

// Watch pushes the member list after every change the informer sees.
func (c *Coordinator) Watch(ctx context.Context) <-chan []cluster.Node {
	return c.view.Subscribe(ctx)
}

// Close stops the informer. The platform removes the pod; nothing is written.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
		c.factory.Shutdown()
	}
	c.view.Close()
	// client-go may share this transport with the process's other clients;
	// closing idle connections only makes them reconnect.
	c.http.CloseIdleConnections()
	return nil
}
