package kubernetes

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// A record is a ConfigMap herd-record-<name> in the coordinator's
// namespace, its content under recordKey in binaryData; its version is
// the resourceVersion. It needs get, create, update and watch on
// configmaps.
const recordKey = "record"

func recordName(name string) string { return "herd-record-" + name }

// refusedRecord names the grant a forbidden request lacks.
func (c *Coordinator) refusedRecord(err error, name string) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("kubernetes: ConfigMap %s/%s: %w (grant get, create, update and watch on configmaps in namespace %s)", c.cfg.Namespace, recordName(name), err, c.cfg.Namespace)
	}
	return fmt.Errorf("kubernetes: ConfigMap %s/%s: %w", c.cfg.Namespace, recordName(name), err)
}

// GetRecord reads a record.
func (c *Coordinator) GetRecord(ctx context.Context, name string) ([]byte, string, error) {
	if err := backend.CheckRecord(c.electCtx, name); err != nil {
		return nil, "", err
	}
	cm, err := c.client.CoreV1().ConfigMaps(c.cfg.Namespace).Get(ctx, recordName(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", c.refusedRecord(err, name)
	}
	return cm.BinaryData[recordKey], cm.ResourceVersion, nil
}

// PutRecord creates the ConfigMap (version "") or updates it at the
// resourceVersion GetRecord returned.
func (c *Coordinator) PutRecord(ctx context.Context, name string, data []byte, version string) (string, error) {
	if err := backend.CheckRecord(c.electCtx, name); err != nil {
		return "", err
	}
	cms := c.client.CoreV1().ConfigMaps(c.cfg.Namespace)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: recordName(name), ResourceVersion: version, Labels: map[string]string{"app.kubernetes.io/managed-by": "herd"}},
		BinaryData: map[string][]byte{recordKey: data},
	}
	var err error
	if version == "" {
		cm, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	} else {
		cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || version != "" && apierrors.IsNotFound(err) {
		return "", fmt.Errorf("kubernetes: ConfigMap %s/%s is no longer at version %q: %w", c.cfg.Namespace, recordName(name), version, cluster.ErrVersionConflict)
	}
	if err != nil {
		return "", c.refusedRecord(err, name)
	}
	return cm.ResourceVersion, nil
}

// WatchRecord streams a record's resourceVersion from a watch on its
// ConfigMap, read again whenever the watch ends.
func (c *Coordinator) WatchRecord(ctx context.Context, name string) <-chan string {
	return backend.WatchRecord(ctx, c.electCtx, name, c.life.Go, func(ctx context.Context, publish func(string)) {
		cms := c.client.CoreV1().ConfigMaps(c.cfg.Namespace)
		for ctx.Err() == nil {
			_, version, err := c.GetRecord(ctx, name)
			if err != nil {
				_ = backend.Sleep(ctx, time.Second, nil)
				continue
			}
			publish(version)
			opts := metav1.ListOptions{FieldSelector: "metadata.name=" + recordName(name), ResourceVersion: version}
			if version == "" {
				opts.ResourceVersion = ""
			}
			w, err := cms.Watch(ctx, opts)
			if err != nil {
				_ = backend.Sleep(ctx, time.Second, nil)
				continue
			}
			for ev := range w.ResultChan() {
				if cm, ok := ev.Object.(*corev1.ConfigMap); ok {
					publish(cm.ResourceVersion)
				}
			}
			w.Stop()
		}
	})
}
