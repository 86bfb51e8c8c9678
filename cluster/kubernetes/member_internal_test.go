package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/herd-go/herd/cluster"
)

// A pod is a member only while Running, Ready, with an IP and not being
// deleted: a pod that finished or has not started yet may still carry a
// stale Ready=True condition, and must not count.
func TestMemberNeedsARunningReadyPod(t *testing.T) {
	c := &Coordinator{cfg: DefaultConfig()}
	pod := func(mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "node-a"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Ports: []corev1.ContainerPort{{Name: "grpc", ContainerPort: 11800}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1",
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
		if mut != nil {
			mut(p)
		}
		return p
	}
	deleting := metav1.NewTime(time.Now())
	for name, tc := range map[string]struct {
		pod  *corev1.Pod
		want bool
	}{
		"running and ready":      {pod(nil), true},
		"pending, stale ready":   {pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }), false},
		"succeeded, stale ready": {pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), false},
		"failed, stale ready":    {pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }), false},
		"unknown phase":          {pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodUnknown }), false},
		"not ready":              {pod(func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }), false},
		"no ready condition":     {pod(func(p *corev1.Pod) { p.Status.Conditions = nil }), false},
		"no IP yet":              {pod(func(p *corev1.Pod) { p.Status.PodIP = "" }), false},
		"being deleted":          {pod(func(p *corev1.Pod) { p.DeletionTimestamp = &deleting }), false},
		"other conditions first": {pod(func(p *corev1.Pod) {
			p.Status.Conditions = append([]corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}, p.Status.Conditions...)
		}), true},
	} {
		n, ok, err := c.member(tc.pod)
		if ok != tc.want || err != nil {
			t.Errorf("%s: member = %v (%v), want %v", name, ok, err, tc.want)
		}
		if ok && (n.ID != "node-a" || n.Address.String() != "10.0.0.1:11800") {
			t.Errorf("%s: node %+v", name, n)
		}
	}
}

// A request client-go's own rate limiter held past the timeout never reached
// the server: the error says so, and what to change.
func TestExplainClientRateLimit(t *testing.T) {
	err := explain(fmt.Errorf("client rate limiter Wait returned an error: %w", context.DeadlineExceeded), DefaultConfig())
	if !strings.Contains(err.Error(), "rate limiter held the request") || !strings.Contains(err.Error(), "QPS") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// A pod without the named port is malformed, and the error names the setting.
func TestMemberWithoutThePortNamesTheSetting(t *testing.T) {
	c := &Coordinator{cfg: DefaultConfig()}
	c.cfg.PortName = "grpc"
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	_, ok, err := c.member(p)
	if ok || err == nil || !strings.Contains(err.Error(), `no container port named "grpc"`) || !strings.Contains(err.Error(), "cluster.kubernetes.portName") {
		t.Fatalf("member = %v, %v; want an error naming the port and cluster.kubernetes.portName", ok, err)
	}
	// A port set in the config needs no named port.
	c.cfg.Port = 11800
	if n, ok, err := c.member(p); !ok || err != nil || n.Address.Port != 11800 {
		t.Fatalf("with port set: member = %+v, %v, %v", n, ok, err)
	}
}

// The reflector's backoff stays within the configured one: its delays are
// [d, 2d) with d from Initial/2 doubling up to Max/2. The default retries
// within a second.
func TestReflectorBackoff(t *testing.T) {
	b := reflectorBackoff(cluster.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second})
	if b.Duration != 50*time.Millisecond || b.Cap != time.Second || b.Factor != 2 || b.Jitter != 1 {
		t.Fatalf("reflector backoff %+v, want from 50ms doubling to a 1s cap, jitter 1", b)
	}
	if d := reflectorBackoff(cluster.Backoff{}.Or(defaultBackoff)); d.Duration != 50*time.Millisecond || d.Cap != 500*time.Millisecond {
		t.Fatalf("default reflector backoff %+v, want 50ms up to 500ms (retries at most 1s apart)", d)
	}
}

// The configured timeout applies unless the REST config has its own; the
// caller's config is not changed.
func TestWithTimeout(t *testing.T) {
	own := &rest.Config{Host: "https://k8s", Timeout: 3 * time.Second}
	if got := withTimeout(own, 10*time.Second); got.Timeout != 3*time.Second || got == own {
		t.Fatalf("timeout %s (copy: %v), want the config's own 3s on a copy", got.Timeout, got != own)
	}
	none := &rest.Config{Host: "https://k8s"}
	if got := withTimeout(none, 10*time.Second); got.Timeout != 10*time.Second || none.Timeout != 0 {
		t.Fatalf("timeout %s (caller's now %s), want 10s on a copy", got.Timeout, none.Timeout)
	}
}
