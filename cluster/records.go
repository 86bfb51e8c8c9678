package cluster

import (
	"context"
	"errors"
)

// Records is the role of small named records kept in the backend and
// written by compare-and-swap, one of Coordinator's. The
// shard package keeps its slot table in one; a leader fences its writes by
// keeping its election term inside the record (see shard).
//
// Records live beside the membership data, never where members or
// candidates are listed.
type Records interface {
	// GetRecord reads the named record. An absent record is no error: its
	// version is "" and data nil. A read may lag a write for a moment on
	// some backends (Nacos serves configs from a cache it refreshes after
	// each write); versions still guard every write.
	GetRecord(ctx context.Context, name string) (data []byte, version string, err error)
	// PutRecord writes data if the record is still at version (version ""
	// writes only if the record is absent) and returns the new version, or
	// an error wrapping ErrVersionConflict if it was not.
	PutRecord(ctx context.Context, name string, data []byte, version string) (string, error)
	// WatchRecord streams the record's version: the value known now and
	// every change after it, coalesced like Watch ("" while the record is
	// absent). A backend without a change feed polls, so a reader that must
	// know the content calls GetRecord when told. The channel is closed
	// when ctx ends or the coordinator closes.
	WatchRecord(ctx context.Context, name string) <-chan string
}

// ErrVersionConflict is wrapped by PutRecord's error when the record was
// not at the version given: read it again.
var ErrVersionConflict = errors.New("cluster: the record changed since it was read")

// CheckRecord checks a record name by CheckElection's rule: 1 to 63
// lowercase letters, digits, '-' and '.'.
func CheckRecord(name string) error { return checkName("record", name) }
