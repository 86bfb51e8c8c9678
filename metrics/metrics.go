// Package metrics exposes a herd node to Prometheus. Register adds one
// collector to a prometheus.Registerer the caller chooses (never the global
// one by default); it reads an inspect.Inspector at scrape time, so values
// are current, nothing runs between scrapes, and a peer that leaves the view
// takes its series with it.
//
// Metric names follow Prometheus's conventions: the herd_ prefix, base units
// (seconds), _total for counters. The full list, with help, is in
// docs/operating.md ("Metrics") and in the Descriptions this package registers.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herd-go/herd/inspect"
)

// Collector is a prometheus.Collector over one node's reports.
type Collector struct {
	in *inspect.Inspector
}

// Register creates a Collector over in and registers it with reg. Remove it
// with reg.Unregister.
func Register(reg prometheus.Registerer, in *inspect.Inspector) (*Collector, error) {
	if reg == nil || in == nil {
		return nil, errors.New("metrics: Register needs a prometheus.Registerer and an inspect.Inspector")
	}
	c := &Collector{in: in}
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return c, nil
}

// all is every metric's description, in the order desc made them; written
// only while the package initialises.
var all []*prometheus.Desc

func desc(name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc("herd_"+name, help, labels, nil)
	all = append(all, d)
	return d
}

var (
	members         = desc("members", "Nodes in this node's view of the cluster, self included.")
	viewVersion     = desc("view_version", "Version of the view: it rises by one with every change of membership.")
	joins           = desc("member_joins_total", "Nodes added to the view since the node started.")
	leaves          = desc("member_leaves_total", "Nodes removed from the view since the node started.")
	lastAnswer      = desc("membership_last_answer_timestamp_seconds", "Unix time when an answer from the backend (a query or a watch push) was last applied; 0 before the first. Its age is time() minus this.")
	queryFailures   = desc("membership_query_failures_total", "Queries of the backend that failed; the view was kept each time.")
	membershipErr   = desc("membership_error", "1 while the last refresh of the membership failed, else 0.")
	registered      = desc("registered", "1 while the backend's last answer listed this node, else 0.")
	refused         = desc("membership_refused_entries_total", "Node entries the backend listed that peers could not dial, each once while it stays listed.")
	holds           = desc("protection_holds_total", "Times protection mode began holding removals.")
	held            = desc("protection_held_members", "Nodes kept in the view by protection mode although the backend no longer lists them.")
	peerUp          = desc("peer_up", "1 while the client for a peer has no connection error, else 0.", "peer")
	peerSent        = desc("peer_messages_sent_total", "Messages written to a peer's stream.", "peer")
	peerDropped     = desc("peer_messages_dropped_total", "Messages refused because a peer's queue was full (Drop policy).", "peer")
	peerFailed      = desc("peer_messages_failed_total", "Messages lost: written to a stream that then broke, or unsent at close.", "peer")
	peerTooLarge    = desc("peer_messages_too_large_total", "Messages refused for exceeding MaxMessageBytes.", "peer")
	peerReconnects  = desc("peer_reconnects_total", "Streams to a peer opened after the first.", "peer")
	peerBatches     = desc("peer_batches_total", "Stream writes to a peer that succeeded.", "peer")
	peerQueued      = desc("peer_queue_messages", "Messages waiting in a peer's queue.", "peer")
	delivered       = desc("server_messages_delivered_total", "Messages handed to a handler on this node, from peers or self.")
	unknownWorker   = desc("server_messages_unknown_worker_total", "Messages dropped because no handler had their worker name.")
	streams         = desc("server_streams_total", "Peer streams this node accepted.")
	malformed       = desc("backend_malformed_entries_total", "Entries in herd's backend paths that are not valid nodes and were skipped.")
	reregistrations = desc("backend_reregistrations_total", "Times this node was registered again after the backend lost it.")
	relists         = desc("backend_watch_relists_total", "Watches rebuilt from a fresh list (etcd).")
	reconnections   = desc("backend_reconnections_total", "Backend connections replaced after a session could not be kept (ZooKeeper).")
	agentSwitches   = desc("backend_agent_switches_total", "Moves to the next Consul agent.")
	entryReads      = desc("backend_entry_reads_total", "Member entries read from the server one at a time (ZooKeeper).")
	duplicateIDs    = desc("backend_duplicate_ids_total", "Registrations withdrawn on finding another live member holding this node's ID (gossip).")
	electionLeader  = desc("election_leader", "1 while this node leads the election, else 0.", "election")
	electionTerm    = desc("election_term", "Fencing term of the election's current leader; 0 while nobody leads.", "election")
	groupLeader     = desc("shard_leader", "1 while this node leads the slot group, else 0.", "group")
	slotsOwned      = desc("shard_slots_owned", "Slots of the group this node owns.", "group")
	slotsTotal      = desc("shard_slots", "Slots of the group.", "group")
	slotsMoving     = desc("shard_slots_unowned", "Slots of the group that nobody owns in the table as this node read it (moving).", "group")
	tableEpoch      = desc("shard_table_epoch", "Epoch of the group's slot table as this node last read it.", "group")
)

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range all {
		ch <- d
	}
}

// Collect sends the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	r := c.in.Report()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	m := r.Membership
	gauge(members, float64(len(r.View.Members)))
	gauge(viewVersion, float64(r.View.Version))
	counter(joins, m.Joined)
	counter(leaves, m.Left)
	if !m.LastAnswer.IsZero() {
		gauge(lastAnswer, float64(m.LastAnswer.UnixNano())/1e9)
	} else {
		gauge(lastAnswer, 0)
	}
	counter(queryFailures, m.QueryFailures)
	gauge(membershipErr, bit(m.Error != ""))
	gauge(registered, bit(m.Registered))
	counter(refused, m.Refused)
	counter(holds, m.Holds)
	gauge(held, float64(len(m.Held)))
	for _, p := range r.View.Members {
		if p.Client == nil {
			continue
		}
		s := p.Client
		gauge(peerUp, bit(p.Healthy()), p.ID)
		counter(peerSent, s.Sent, p.ID)
		counter(peerDropped, s.Dropped, p.ID)
		counter(peerFailed, s.Failed, p.ID)
		counter(peerTooLarge, s.TooLarge, p.ID)
		counter(peerReconnects, s.Reconnects, p.ID)
		counter(peerBatches, s.Batches, p.ID)
		gauge(peerQueued, float64(s.Queued), p.ID)
	}
	if s := r.Server; s != nil {
		counter(delivered, s.Delivered)
		counter(unknownWorker, s.UnknownWorker)
		counter(streams, s.Streams)
	}
	if s := r.BackendStats; s != nil {
		counter(malformed, s.Malformed)
		counter(reregistrations, s.Reregistrations)
		counter(relists, s.Relists)
		counter(reconnections, s.Reconnections)
		counter(agentSwitches, s.AgentSwitches)
		counter(duplicateIDs, s.DuplicateIDs)
		counter(entryReads, s.EntryReads)
	}
	for _, e := range r.Elections {
		gauge(electionLeader, bit(e.Self), e.Name)
		gauge(electionTerm, float64(e.Term), e.Name)
	}
	for _, g := range r.Groups {
		gauge(groupLeader, bit(g.Leading), g.Name)
		gauge(slotsOwned, float64(g.Owned), g.Name)
		gauge(slotsTotal, float64(g.Slots), g.Name)
		gauge(slotsMoving, float64(g.Shares[""]), g.Name)
		gauge(tableEpoch, float64(g.Epoch), g.Name)
	}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
