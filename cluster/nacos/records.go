package nacos

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/cluster/backend/leaserecord"
)

// A record is a Nacos config herd.record.<serviceName>.<name>, its data
// base64 after recordPrefix; its version is the content's MD5, and writes
// are compare-and-swaps on it (casMd5). Like elections, records need a
// server that honours casMd5: on r-nacos they fail with
// ErrNoCompareAndSwap.
const (
	recordPrefix = "herd-record:"
	// recordAbsent is the content of a record created but never written:
	// a create alone proves nothing on Nacos (see configStore.Put), so
	// herd creates this first and then writes by compare-and-swap.
	recordAbsent = recordPrefix + "absent"
	// recordPoll is how often WatchRecord reads the record: the open API
	// has no change feed herd uses.
	recordPoll = 250 * time.Millisecond
)

func (c *Coordinator) recordStore(name string) (*configStore, error) {
	if err := backend.CheckRecord(c.ctx, name); err != nil {
		return nil, err
	}
	s := c.configStore(name)
	s.dataID = c.recordDataID(name)
	return s, nil
}

// GetRecord reads a record.
func (c *Coordinator) GetRecord(ctx context.Context, name string) ([]byte, string, error) {
	s, err := c.recordStore(name)
	if err != nil {
		return nil, "", err
	}
	body, found, err := s.read(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("nacos: %w", err)
	}
	if !found || body == recordAbsent {
		return nil, "", nil
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(body, recordPrefix))
	if err != nil || !strings.HasPrefix(body, recordPrefix) {
		return nil, "", fmt.Errorf("nacos: config %s does not hold a herd record (someone else's content?)", s.dataID)
	}
	return data, md5Hex([]byte(body)), nil
}

// PutRecord writes a record by compare-and-swap on its content's MD5.
func (c *Coordinator) PutRecord(ctx context.Context, name string, data []byte, version string) (string, error) {
	s, err := c.recordStore(name)
	if err != nil {
		return "", err
	}
	if err := c.casChecked(ctx, s); err != nil {
		return "", err
	}
	if version == "" {
		if _, err := s.publish(ctx, []byte(recordAbsent), md5Hex(nil)); err != nil && !errors.Is(err, leaserecord.ErrConflict) {
			return "", fmt.Errorf("nacos: %w", err)
		}
		version = md5Hex([]byte(recordAbsent))
	}
	v, err := s.publish(ctx, []byte(recordPrefix+base64.StdEncoding.EncodeToString(data)), version)
	if errors.Is(err, leaserecord.ErrConflict) {
		return "", fmt.Errorf("nacos: config %s is no longer at version %q: %w", s.dataID, version, cluster.ErrVersionConflict)
	}
	if err != nil {
		return "", fmt.Errorf("nacos: %w", err)
	}
	return v, nil
}

// WatchRecord streams a record's version, read every 250ms.
func (c *Coordinator) WatchRecord(ctx context.Context, name string) <-chan string {
	return backend.WatchRecord(ctx, c.ctx, name, c.life.Go, func(ctx context.Context, publish func(string)) {
		for ctx.Err() == nil {
			if _, version, err := c.GetRecord(ctx, name); err == nil {
				publish(version)
			}
			_ = backend.Sleep(ctx, recordPoll, nil)
		}
	})
}
