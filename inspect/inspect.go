// Package inspect gathers what an operator asks about one herd node into
// one plain value, a Report: the node's view of the cluster, each peer
// client's counters and health, the backend's counters, and the leaders and
// slot tables the node follows. Packages metrics (Prometheus) and status
// (HTTP) present the same Report; it imports neither Prometheus nor net/http.
package inspect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/shard"
)

// Sources are what an Inspector reads. Only Manager is required.
type Sources struct {
	// Manager is the node's remote.Manager: the view and the peer clients.
	Manager *remote.Manager
	// Backend names the coordinator's backend in reports (cluster.selector,
	// e.g. "etcd"); optional.
	Backend string
	// Coordinator, when set, adds the backend's counters and is where
	// Elections are observed.
	Coordinator cluster.Coordinator
	// Server, when set, adds the counters of messages delivered to this node.
	Server *remote.Server
	// Elections are names of elections to follow (Coordinator must be
	// set): each report says who leads them.
	Elections []string
	// Groups are slot-sharding groups this node joined, reported by name:
	// whether it leads, the slots it owns, the table's epoch and shares.
	Groups map[string]*shard.Group
	// StaleAfter is how long the backend may fail to answer before the
	// registration is reported unknown; default DefaultStaleAfter. Set it
	// to the backend's registration TTL.
	StaleAfter time.Duration
}

// leader is the optional role every herd backend implements: whether this
// node leads an election by its own knowledge (its Leadership holds).
type leader interface {
	Leading(election string) (term uint64, ok bool)
}

// peerClient is what a Manager's client for a remote peer offers
// (remote.PeerClient does); the in-process self client has no counters.
type peerClient interface {
	Stats() remote.ClientStats
	Err() error
}

// Inspector produces Reports. It follows Elections in the background until
// Close; without elections it holds no goroutine.
type Inspector struct {
	src    Sources
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	leaders map[string]cluster.Leader // by election, as last observed
}

// New returns an Inspector over src. It fails if src has no Manager, or
// names elections but no Coordinator that runs them.
func New(src Sources) (*Inspector, error) {
	if src.Manager == nil {
		return nil, errors.New("inspect: Sources.Manager is required")
	}
	if len(src.Elections) > 0 {
		if src.Coordinator == nil {
			return nil, fmt.Errorf("inspect: Sources.Elections %q needs the Coordinator that runs them", src.Elections)
		}
		for _, name := range src.Elections {
			if err := cluster.CheckElection(name); err != nil {
				return nil, fmt.Errorf("inspect: Sources.Elections: %w", err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &Inspector{src: src, cancel: cancel, leaders: map[string]cluster.Leader{}}
	for _, name := range slices.Compact(slices.Sorted(slices.Values(src.Elections))) {
		leaders := src.Coordinator.Observe(ctx, name)
		in.wg.Go(func() {
			for l := range leaders {
				in.mu.Lock()
				in.leaders[name] = l
				in.mu.Unlock()
			}
		})
	}
	return in, nil
}

// Close stops following elections. It does not close the sources.
func (in *Inspector) Close() error {
	in.cancel()
	in.wg.Wait()
	return nil
}

// Report is one node's account of itself and the cluster, as of Time.
type Report struct {
	Time    time.Time    `json:"time"`
	Self    cluster.Node `json:"self"`
	Backend string       `json:"backend,omitempty"`
	// View is the Manager's current view.
	View View `json:"view"`
	// Membership is the Manager's account of following the backend.
	Membership Membership `json:"membership"`
	// BackendStats are the coordinator's counters; nil without one.
	BackendStats *cluster.Stats `json:"backendStats,omitempty"`
	// Server are the counters of messages this node received; nil without one.
	Server *remote.ServerStats `json:"server,omitempty"`
	// Elections and Groups, sorted by name; empty when none is followed.
	Elections []Election `json:"elections,omitempty"`
	Groups    []Group    `json:"groups,omitempty"`
}

// View is one snapshot of the membership.
type View struct {
	Version uint64   `json:"version"`
	Members []Member `json:"members"`
	// Added and Removed are the node IDs that changed with this version.
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// Member is one node of the view and, for a peer, its client's state.
type Member struct {
	ID      string            `json:"id"`
	Address string            `json:"address"` // host:port, as peers dial it
	Host    string            `json:"host"`
	Port    int               `json:"port"`
	Meta    map[string]string `json:"meta,omitempty"`
	Self    bool              `json:"self"`
	// Client is the peer client's counters; nil for self (served in-process).
	Client *remote.ClientStats `json:"client,omitempty"`
	// Error is why the client's last attempt to open its stream failed;
	// empty when the stream is open (or not tried yet) and for self.
	Error string `json:"error,omitempty"`
}

// Healthy says whether messages to the member can be delivered: self
// always, a peer while its client has no connection error.
func (m Member) Healthy() bool { return m.Error == "" }

// Membership is the Manager's account of following the backend.
type Membership struct {
	remote.ManagerStats
	// Error is the last refresh error; empty once a refresh succeeds again.
	Error string `json:"error,omitempty"`
	// Registration is "yes" or "no" as the backend's last answer showed
	// self, or "unknown" once the backend has failed to answer for longer
	// than Sources.StaleAfter: an old answer is no evidence either way.
	Registration string `json:"registration"`
}

// Registration values.
const (
	Registered    = "yes"
	NotRegistered = "no"
	Unknown       = "unknown"
)

// DefaultStaleAfter is Sources.StaleAfter's default: the registration TTL
// of herd's backends by default.
const DefaultStaleAfter = 10 * time.Second

// Election is who leads one followed election, as this node sees it.
type Election struct {
	Name string `json:"name"`
	// Leader is the leader's node ID, empty when nobody leads (or before the
	// first observation).
	Leader string `json:"leader"`
	Term   uint64 `json:"term"`
	// Self says whether this node leads, by its own knowledge: its
	// Leadership holds (Done not closed).
	Self bool `json:"self"`
	// Note says why the report differs from what the backend last showed:
	// this node's leadership has ended while the backend (unreachable, or
	// not yet caught up) still names it.
	Note string `json:"note,omitempty"`
}

// Group is one slot-sharding group, as this node last read its table.
type Group struct {
	Name  string `json:"name"`
	Epoch uint64 `json:"epoch"`
	Slots int    `json:"slots"`
	// Owned is how many slots this node owns now.
	Owned int `json:"owned"`
	// Leading is whether this node leads the group, and LeaderTerm its term.
	Leading    bool   `json:"leading"`
	LeaderTerm uint64 `json:"leaderTerm,omitempty"`
	// Shares are the slots each member owns in the table; slots moving
	// (owned by nobody) are counted under "".
	Shares map[string]int `json:"shares"`
	// Reason says why this node owns no slot (see shard.Group.Reason);
	// empty while it owns some.
	Reason string `json:"reason,omitempty"`
}

func leadingOf(own leader, name string) (uint64, bool) {
	if own == nil {
		return 0, false
	}
	return own.Leading(name)
}

// Report gathers a Report now. It never blocks on the backend: it reads
// what the sources already hold.
func (in *Inspector) Report() Report {
	snap := in.src.Manager.Snapshot()
	r := Report{Time: time.Now(), Backend: in.src.Backend, View: View{Version: snap.Version}}
	for i := range snap.Len() {
		n := snap.Node(i)
		m := Member{ID: n.ID, Address: n.Address.String(), Host: n.Address.Host, Port: n.Address.Port, Meta: n.Meta, Self: n.Self}
		if n.Self {
			r.Self = n
		} else if c, ok := snap.Client(i).(peerClient); ok {
			st := c.Stats()
			m.Client = &st
			if err := c.Err(); err != nil {
				m.Error = err.Error()
			}
		}
		r.View.Members = append(r.View.Members, m)
	}
	for _, n := range snap.Added {
		r.View.Added = append(r.View.Added, n.ID)
	}
	for _, n := range snap.Removed {
		r.View.Removed = append(r.View.Removed, n.ID)
	}
	r.Membership.ManagerStats = in.src.Manager.Stats()
	r.Membership.Registration = NotRegistered
	if r.Membership.Registered {
		r.Membership.Registration = Registered
	}
	if err := in.src.Manager.Err(); err != nil {
		r.Membership.Error = err.Error()
		stale := cmp.Or(in.src.StaleAfter, DefaultStaleAfter)
		if !errors.Is(err, remote.ErrHoldingRemovals) && r.Time.Sub(r.Membership.LastAnswer) > stale {
			r.Membership.Registration = Unknown
		}
	}
	if in.src.Coordinator != nil {
		st := in.src.Coordinator.Stats()
		r.BackendStats = &st
	}
	if in.src.Server != nil {
		st := in.src.Server.Stats()
		r.Server = &st
	}
	own, _ := in.src.Coordinator.(leader)
	selfID := r.Self.ID
	in.mu.Lock()
	for name, l := range in.leaders {
		e := Election{Name: name, Leader: l.ID, Term: l.Term}
		switch term, ok := leadingOf(own, name); {
		case ok:
			e.Leader, e.Term, e.Self = selfID, term, true
		case l.ID != "" && l.ID == selfID && own != nil:
			e.Note = "this node's leadership has ended; the backend still names it (unreachable, or not caught up yet)"
		case l.ID != "" && l.ID == selfID:
			e.Self = true // no own knowledge to go by: the backend's word
		}
		r.Elections = append(r.Elections, e)
	}
	in.mu.Unlock()
	slices.SortFunc(r.Elections, func(a, b Election) int { return cmp.Compare(a.Name, b.Name) })
	for name, g := range in.src.Groups {
		t := g.Table()
		term, leading := g.Leading()
		shares := map[string]int{}
		for _, o := range t.Owners {
			shares[o]++
		}
		r.Groups = append(r.Groups, Group{Name: name, Epoch: t.Epoch, Slots: len(t.Owners), Owned: g.Owned().Len(),
			Leading: leading, LeaderTerm: term, Shares: shares, Reason: g.Reason()})
	}
	slices.SortFunc(r.Groups, func(a, b Group) int { return cmp.Compare(a.Name, b.Name) })
	return r
}
