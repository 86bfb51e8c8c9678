package kubernetes

import (
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend/leaserecord"
)

// Config is the cluster.kubernetes section. namespace, labelSelector and
// uidEnvName are Apache SkyWalking's; the rest are herd's own.
type Config struct {
	// Namespace whose pods are watched (SW_CLUSTER_K8S_NAMESPACE).
	Namespace string `yaml:"namespace"`
	// LabelSelector picks the cluster's pods; the full syntax, set-based
	// terms included, e.g. "app=herd,tier in (backend),!canary" (SW_CLUSTER_K8S_LABEL).
	LabelSelector string `yaml:"labelSelector"`
	// UIDEnvName names the environment variable holding this pod's UID, set
	// from the downward API (SW_CLUSTER_K8S_UID). When it is unset, the pod
	// named HOSTNAME is self.
	UIDEnvName string `yaml:"uidEnvName"`
	// Port peers are dialled on (SW_CLUSTER_K8S_PORT); 0 means use the
	// container port named PortName.
	Port int `yaml:"port"`
	// PortName is the named container port to dial when Port is 0 (SW_CLUSTER_K8S_PORT_NAME).
	PortName string `yaml:"portName"`
	// Kubeconfig is a kubeconfig file; empty means in-cluster config (SW_CLUSTER_K8S_KUBECONFIG).
	Kubeconfig string `yaml:"kubeconfig"`
	// Resync re-delivers the whole cache this often, a safety net behind the watch (SW_CLUSTER_K8S_RESYNC).
	Resync time.Duration `yaml:"resync"`
	// Timeout bounds start-up (reaching the API and the first full list) and queries (SW_CLUSTER_K8S_TIMEOUT).
	Timeout time.Duration `yaml:"timeout"`
	// ElectionTTL is an election Lease's duration (SW_CLUSTER_K8S_ELECTION_TTL):
	// a crashed leader is replaced within it plus ElectionRenewPeriod, and
	// its Done closes a third of it before anyone can take over.
	ElectionTTL time.Duration `yaml:"electionTTL"`
	// ElectionRenewPeriod is how often the leader renews the Lease and
	// candidates read it (SW_CLUSTER_K8S_ELECTION_RENEW_PERIOD).
	ElectionRenewPeriod time.Duration `yaml:"electionRenewPeriod"`
	// REST, when set, reaches the API server instead of the in-cluster
	// config or Kubeconfig. Set in code only.
	REST *rest.Config `yaml:"-"`
}

// DefaultConfig returns the values of herd's built-in configuration.
func DefaultConfig() Config {
	return Config{
		Namespace:           "default",
		LabelSelector:       "app=collector,release=skywalking",
		UIDEnvName:          "SKYWALKING_COLLECTOR_UID",
		PortName:            "grpc",
		Resync:              time.Minute,
		Timeout:             10 * time.Second,
		ElectionTTL:         10 * time.Second,
		ElectionRenewPeriod: time.Second,
	}
}

func key(k string) string { return "cluster.kubernetes." + k }

func (c Config) selector() (labels.Selector, error) {
	sel, err := labels.Parse(c.LabelSelector)
	if err != nil {
		return nil, &cluster.ConfigError{Key: key("labelSelector"), Value: c.LabelSelector, Accepted: "a Kubernetes label selector such as app=herd or tier in (a,b),!canary (SW_CLUSTER_K8S_LABEL)", Err: err}
	}
	if sel.Empty() {
		return nil, &cluster.ConfigError{Key: key("labelSelector"), Value: c.LabelSelector, Accepted: "a non-empty selector: every pod of the namespace is rarely the cluster (SW_CLUSTER_K8S_LABEL)"}
	}
	return sel, nil
}

func (c Config) validate() error {
	if c.Namespace == "" {
		return &cluster.ConfigError{Key: key("namespace"), Value: "", Accepted: "the pods' namespace (SW_CLUSTER_K8S_NAMESPACE)"}
	}
	if _, err := c.selector(); err != nil {
		return err
	}
	if c.Port < 0 || c.Port > 65535 || (c.Port == 0 && c.PortName == "") {
		return &cluster.ConfigError{Key: key("port"), Value: strconv.Itoa(c.Port), Accepted: "a port from 1 to 65535, or 0 with portName naming a container port (SW_CLUSTER_K8S_PORT, SW_CLUSTER_K8S_PORT_NAME)"}
	}
	if c.Resync < 0 {
		return &cluster.ConfigError{Key: key("resync"), Value: c.Resync.String(), Accepted: "a duration, 0 to turn resync off (SW_CLUSTER_K8S_RESYNC)"}
	}
	if c.Timeout <= 0 {
		return &cluster.ConfigError{Key: key("timeout"), Value: c.Timeout.String(), Accepted: "a positive duration (SW_CLUSTER_K8S_TIMEOUT)"}
	}
	if bad, accepted := leaserecord.CheckTiming(c.ElectionTTL, c.ElectionRenewPeriod); bad != "" {
		value, env := c.ElectionTTL, "SW_CLUSTER_K8S_ELECTION_TTL"
		if bad == "electionRenewPeriod" {
			value, env = c.ElectionRenewPeriod, "SW_CLUSTER_K8S_ELECTION_RENEW_PERIOD"
		}
		return &cluster.ConfigError{Key: key(bad), Value: value.String(), Accepted: accepted + " (" + env + ")"}
	}
	return nil
}
