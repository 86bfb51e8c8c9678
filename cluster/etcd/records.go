package etcd

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// recordKey is where a record is kept: beside the member prefix, not under
// it, so members never see it. Its version is its mod revision.
func (c *Coordinator) recordKey(name string) string {
	return strings.TrimSuffix(c.prefix, "/") + ".records/" + name
}

// GetRecord reads a record.
func (c *Coordinator) GetRecord(ctx context.Context, name string) ([]byte, string, error) {
	if err := backend.CheckRecord(c.ctx, name); err != nil {
		return nil, "", err
	}
	resp, err := c.client.Get(ctx, c.recordKey(name))
	if err != nil {
		return nil, "", fmt.Errorf("etcd: reading record %s: %w", c.recordKey(name), err)
	}
	if len(resp.Kvs) == 0 {
		return nil, "", nil
	}
	return resp.Kvs[0].Value, strconv.FormatInt(resp.Kvs[0].ModRevision, 10), nil
}

// PutRecord writes a record in a transaction that compares its mod
// revision (or, for version "", that it does not exist).
func (c *Coordinator) PutRecord(ctx context.Context, name string, data []byte, version string) (string, error) {
	if err := backend.CheckRecord(c.ctx, name); err != nil {
		return "", err
	}
	key := c.recordKey(name)
	cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	if version != "" {
		rev, err := strconv.ParseInt(version, 10, 64)
		if err != nil {
			return "", fmt.Errorf("etcd: record %s: version %q is not one GetRecord returned: %w", key, version, cluster.ErrVersionConflict)
		}
		cmp = clientv3.Compare(clientv3.ModRevision(key), "=", rev)
	}
	resp, err := c.client.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, string(data))).Commit()
	if err != nil {
		return "", fmt.Errorf("etcd: writing record %s: %w", key, err)
	}
	if !resp.Succeeded {
		return "", fmt.Errorf("etcd: record %s is no longer at version %q: %w", key, version, cluster.ErrVersionConflict)
	}
	return strconv.FormatInt(resp.Header.Revision, 10), nil
}

// WatchRecord streams a record's mod revision from an etcd watch.
func (c *Coordinator) WatchRecord(ctx context.Context, name string) <-chan string {
	return backend.WatchRecord(ctx, c.ctx, name, c.life.Go, func(ctx context.Context, publish func(string)) {
		c.follow(ctx, c.recordKey(name), false, func(resp *clientv3.GetResponse) {
			version := ""
			if len(resp.Kvs) > 0 {
				version = strconv.FormatInt(resp.Kvs[0].ModRevision, 10)
			}
			publish(version)
		})
	})
}
