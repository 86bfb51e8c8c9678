package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"

	"github.com/go-zookeeper/zk"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// recordPath is the persistent znode a record is kept in, beside the
// member path. Its version is the znode's data version (herd never deletes
// a record, so a version is never seen twice).
func (c *Coordinator) recordPath(name string) string { return c.path + ".records/" + name }

func recordVersion(s *zk.Stat) string { return strconv.FormatInt(int64(s.Version), 10) }

// GetRecord reads a record. The ZooKeeper client takes no context: a call
// is bounded by the session timeout.
func (c *Coordinator) GetRecord(_ context.Context, name string) ([]byte, string, error) {
	if err := backend.CheckRecord(c.ctx, name); err != nil {
		return nil, "", err
	}
	data, stat, err := c.zk().Get(c.recordPath(name))
	if errors.Is(err, zk.ErrNoNode) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("zookeeper: reading record %s: %w", c.recordPath(name), err)
	}
	return data, recordVersion(stat), nil
}

// PutRecord creates the record's znode (version "") or sets its data at
// the data version GetRecord returned.
func (c *Coordinator) PutRecord(_ context.Context, name string, data []byte, version string) (string, error) {
	if err := backend.CheckRecord(c.ctx, name); err != nil {
		return "", err
	}
	p := c.recordPath(name)
	conflict := fmt.Errorf("zookeeper: record %s is no longer at version %q: %w", p, version, cluster.ErrVersionConflict)
	if version == "" {
		_, err := c.zk().Create(p, data, 0, c.acl)
		if errors.Is(err, zk.ErrNoNode) {
			if err = c.ensure(path.Dir(p)); err == nil {
				_, err = c.zk().Create(p, data, 0, c.acl)
			}
		}
		if errors.Is(err, zk.ErrNodeExists) {
			return "", conflict
		}
		if err != nil {
			return "", fmt.Errorf("zookeeper: creating record %s: %w", p, err)
		}
		return "0", nil // a new znode's data version
	}
	v, err := strconv.ParseInt(version, 10, 32)
	if err != nil {
		return "", fmt.Errorf("zookeeper: record %s: version %q is not one GetRecord returned: %w", p, version, cluster.ErrVersionConflict)
	}
	stat, err := c.zk().Set(p, data, int32(v))
	if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
		return "", conflict
	}
	if err != nil {
		return "", fmt.Errorf("zookeeper: writing record %s: %w", p, err)
	}
	return recordVersion(stat), nil
}

// WatchRecord streams a record's version from data watches.
func (c *Coordinator) WatchRecord(ctx context.Context, name string) <-chan string {
	p := c.recordPath(name)
	return backend.WatchRecord(ctx, c.ctx, name, c.life.Go, func(ctx context.Context, publish func(string)) {
		bo := c.backoff()
		for ctx.Err() == nil {
			// ExistsW watches creation as well as changes.
			_, stat, fired, err := c.zk().ExistsW(p)
			if err != nil {
				bo.Wait(ctx)
				continue
			}
			bo.Reset()
			version := ""
			if stat != nil {
				version = recordVersion(stat)
			}
			publish(version)
			select {
			case <-fired:
			case <-ctx.Done():
			}
		}
	})
}
