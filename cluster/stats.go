package cluster

// Stats are a coordinator's counters, in one shape for every backend so
// that metrics and status pages read them without knowing the backend. A
// counter a backend has no use for stays zero; each field says who counts it.
type Stats struct {
	// Malformed counts entries in herd's backend paths that are not valid
	// nodes and were skipped (written by someone else, or by a newer or
	// broken herd), each bad write once. Every backend but standalone.
	Malformed uint64 `json:"malformed"`
	// Reregistrations counts how often self was registered again after the
	// backend lost it (a lease or session expired, an agent forgot it, a
	// server restarted empty). etcd, Consul, ZooKeeper and Nacos.
	Reregistrations uint64 `json:"reregistrations"`
	// Relists counts watches rebuilt from a fresh list after the backend
	// could not resume them (etcd's compacted revision). etcd.
	Relists uint64 `json:"relists"`
	// Reconnections counts connections replaced after going without a
	// session past the session timeout, or after every session was
	// refused. ZooKeeper.
	Reconnections uint64 `json:"reconnections"`
	// AgentSwitches counts moves to the next agent in hostPort. Consul.
	AgentSwitches uint64 `json:"agentSwitches"`
	// DuplicateIDs counts registrations this node withdrew on finding
	// another live member holding its ID at another address (registered at
	// the same moment, or across a partition that healed). gossip.
	DuplicateIDs uint64 `json:"duplicateIds"`
	// EntryReads counts member entries read from the server one at a time,
	// the work a membership change costs where each member is its own
	// object: a join costs one read, a re-list one per member. ZooKeeper.
	EntryReads uint64 `json:"entryReads"`
}
