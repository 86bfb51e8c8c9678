package consul

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hashicorp/consul/api"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// recordKey is where a record is kept in the KV store; its version is the
// key's ModifyIndex.
func (c *Coordinator) recordKey(name string) string {
	return "herd/records/" + c.cfg.ServiceName + "/" + name
}

// GetRecord reads a record.
func (c *Coordinator) GetRecord(ctx context.Context, name string) ([]byte, string, error) {
	if err := backend.CheckRecord(c.ctx, name); err != nil {
		return nil, "", err
	}
	pair, _, err := c.agent().KV().Get(c.recordKey(name), (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, "", fmt.Errorf("consul: reading record %s: %w", c.recordKey(name), err)
	}
	if pair == nil {
		return nil, "", nil
	}
	return pair.Value, strconv.FormatUint(pair.ModifyIndex, 10), nil
}

// PutRecord writes a record with a check-and-set transaction (index 0:
// only if absent), whose answer carries the new ModifyIndex.
func (c *Coordinator) PutRecord(ctx context.Context, name string, data []byte, version string) (string, error) {
	if err := backend.CheckRecord(c.ctx, name); err != nil {
		return "", err
	}
	key := c.recordKey(name)
	var index uint64
	if version != "" {
		var err error
		if index, err = strconv.ParseUint(version, 10, 64); err != nil || index == 0 {
			return "", fmt.Errorf("consul: record %s: version %q is not one GetRecord returned: %w", key, version, cluster.ErrVersionConflict)
		}
	}
	ok, resp, _, err := c.agent().Txn().Txn(api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: key, Value: data, Index: index}}}, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("consul: writing record %s: %w", key, err)
	}
	if !ok || len(resp.Results) == 0 || resp.Results[0].KV == nil {
		return "", fmt.Errorf("consul: record %s is no longer at version %q: %w", key, version, cluster.ErrVersionConflict)
	}
	return strconv.FormatUint(resp.Results[0].KV.ModifyIndex, 10), nil
}

// WatchRecord streams a record's ModifyIndex from blocking queries.
func (c *Coordinator) WatchRecord(ctx context.Context, name string) <-chan string {
	key := c.recordKey(name)
	return backend.WatchRecord(ctx, c.ctx, name, c.life.Go, func(ctx context.Context, publish func(string)) {
		c.follow(ctx, key, func(pair *api.KVPair) {
			version := ""
			if pair != nil {
				version = strconv.FormatUint(pair.ModifyIndex, 10)
			}
			publish(version)
		})
	})
}
