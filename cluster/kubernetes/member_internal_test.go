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
