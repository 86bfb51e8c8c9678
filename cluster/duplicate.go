package cluster

import (
	"errors"
	"fmt"
)

// ErrDuplicateID is wrapped by the error RegisterRemote returns when the
// node ID is held by another live process: an entry under that ID, kept
// alive by another session, lease or connection, at another address.
// Registering would silently take that node's traffic, so herd refuses.
var ErrDuplicateID = errors.New("cluster: node ID is held by another live process")

// DuplicateIDError is the error behind ErrDuplicateID: which ID, and the
// address of each claimant.
type DuplicateIDError struct {
	ID     string
	Ours   Address // the address this process tried to register
	Theirs Address // the address the live holder registered
}

func (e *DuplicateIDError) Error() string {
	return fmt.Sprintf("cluster: node ID %s is held by a live process at %s, so this process at %s does not take it over: "+
		"give each process its own ID (cluster.nodeId / SW_CLUSTER_NODE_ID, or leave it empty to have one generated), or stop the other first",
		e.ID, e.Theirs, e.Ours)
}

// Is makes errors.Is(err, ErrDuplicateID) true.
func (e *DuplicateIDError) Is(target error) bool { return target == ErrDuplicateID }
