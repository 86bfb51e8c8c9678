package remote

import (
	"errors"
	"fmt"
	"time"

	"github.com/herd-go/herd/cluster"
)

// ErrHoldingRemovals is wrapped by the error reported while protection mode
// keeps nodes in the view that the backend no longer lists.
var ErrHoldingRemovals = errors.New("remote: protection mode is holding removals")

// Protection mode's defaults: an update is held when, with it, more than half
// of the peers would have left within ten seconds.
const (
	DefaultProtectionThreshold = 0.5
	DefaultProtectionConfirm   = 10 * time.Second
)

// WithProtection sets protection mode, which keeps a backend that lost its
// data (restarted empty, wiped, failed over to a blank replica) from
// emptying every view while the nodes register again.
//
// When an update would bring the peers that left within the last confirm
// period to more than threshold of the peers (self excluded), its removals
// are held: additions and changes apply at once, the nodes it drops stay in
// the view, Err wraps ErrHoldingRemovals and Stats reports them. They are
// removed when a query begun at least confirm after the hold began still
// lacks them; a node that registers again ends its hold. One node leaving
// on its own is never held, so neither is a graceful leave or a rolling
// restart that keeps node IDs, except in the confirm period after the
// backend answers again following failed queries: a server back from an
// outage may have lost what it held in memory (Nacos's ephemeral
// instances, a Consul agent's TTL checks) while its nodes register again,
// so every removal then is held until a query a confirm period after the
// return confirms it. Churn is never held either: a node that
// joined (after the Manager's first answer) and leaves again within one
// confirm period neither counts as a loss nor is kept, so short-lived
// nodes coming and going beside a stable core leave every view at once.
// Nor is a graceful leave, however many leave together: a node whose
// coordinator closes says so first (cluster.StateLeaving in its metadata,
// on every backend that can update an entry), and a peer listed with that
// mark leaves the view at once and counts for nothing.
//
// threshold is a fraction in (0, 1]; 1 turns protection off. The default
// is DefaultProtectionThreshold and DefaultProtectionConfirm.
func WithProtection(threshold float64, confirm time.Duration) ManagerOption {
	return func(o *managerOptions) { o.protection = protection{threshold: threshold, confirm: confirm} }
}

type protection struct {
	threshold float64
	confirm   time.Duration
}

func (p protection) check() error {
	if !(p.threshold > 0 && p.threshold <= 1) {
		return fmt.Errorf("remote: protection threshold %v must be a fraction above 0 and at most 1 (1 turns protection off)", p.threshold)
	}
	if p.confirm <= 0 && p.threshold < 1 {
		return fmt.Errorf("remote: protection confirm period %s must be positive", p.confirm)
	}
	return nil
}

// guard is protection mode's state, kept under the Manager's mu.
type guard struct {
	protection
	joined map[string]time.Time // peers that arrived recently, by ID, and when
	left   map[string]time.Time // peers removed recently, by ID, and when
	// outage is set while queries fail; recovered is when one answered
	// again. A backend back from an outage may be one that lost what it
	// held in memory (Nacos's ephemeral instances, a Consul agent's TTL
	// checks) while its nodes register again: for a confirm period after
	// it, removals are held however few they are.
	outage    bool
	recovered time.Time
	since     time.Time // when the current hold began; zero if none
	held      []cluster.Node
	holds     uint64
}

// arrived records when the peers new to the view arrived, so that one
// leaving again within the confirm period counts as churn. fresh are the
// IDs the Manager's normalize kept at an address the view lacks, and
// inView the view's IDs: a node that only moved is no arrival.
func (g *guard) arrived(fresh map[string]struct{}, inView map[string]int, now time.Time) {
	for id, at := range g.joined {
		if now.Sub(at) > g.confirm {
			delete(g.joined, id)
		}
	}
	for id := range fresh {
		if _, moved := inView[id]; moved {
			continue
		}
		if g.joined == nil {
			g.joined = map[string]time.Time{}
		}
		g.joined[id] = now
	}
}

// decide returns the nodes of cur to keep in the view although the answer
// (inAnswer says which IDs it keeps) drops them (nil to apply the answer as is), and the
// error to report. leaving are the IDs the answer listed with the mark of a
// graceful leave: they go at once and count for nothing, like churn.
// started is when the query behind the answer began; zero for a watch push.
func (g *guard) decide(cur []cluster.Node, inAnswer func(id string) bool, leaving map[string]struct{}, now, started time.Time) ([]cluster.Node, error) {
	for id := range g.left {
		if inAnswer(id) {
			delete(g.left, id) // back again: it no longer counts as lost
		}
	}
	var dropped []cluster.Node
	peers := 0
	for _, n := range cur {
		if n.Self {
			continue
		}
		if _, ok := leaving[n.ID]; ok {
			delete(g.joined, n.ID)
			continue
		}
		if at, ok := g.joined[n.ID]; ok && now.Sub(at) <= g.confirm {
			if !inAnswer(n.ID) {
				delete(g.joined, n.ID) // churn: it goes, and counts for nothing
			}
			continue
		}
		peers++
		if !inAnswer(n.ID) {
			dropped = append(dropped, n)
		}
	}
	for id, at := range g.left {
		if now.Sub(at) > g.confirm {
			delete(g.left, id)
		}
	}
	holding := !g.since.IsZero()
	confirmed := holding && !started.IsZero() && !started.Before(g.since.Add(g.confirm))
	lost := len(dropped) + len(g.left)
	afterOutage := !g.recovered.IsZero() && now.Sub(g.recovered) < g.confirm
	// Once holding, the rest of a hold stays held until it is confirmed or
	// its nodes are back, however few are left: nodes that register again
	// one by one must not leave the last of them to flicker out.
	if g.threshold >= 1 || confirmed || len(dropped) == 0 ||
		!holding && !afterOutage && (lost <= 1 || float64(lost) <= g.threshold*float64(peers+len(g.left))) {
		g.since, g.held = time.Time{}, nil
		for _, n := range dropped {
			if g.left == nil {
				g.left = map[string]time.Time{}
			}
			g.left[n.ID] = now
		}
		return nil, nil
	}
	if g.since.IsZero() {
		g.since = now
		if afterOutage {
			g.since = g.recovered // confirmed a confirm period after the return
		}
		g.holds++
	}
	g.held = dropped
	if afterOutage {
		return dropped, fmt.Errorf("%w: the backend, answering again after an outage, dropped %d of %d peers; keeping them until a query after %s confirms it (a server back empty is refilled as its nodes register again)",
			ErrHoldingRemovals, len(dropped), peers, g.since.Add(g.confirm).Format(time.TimeOnly))
	}
	return dropped, fmt.Errorf("%w: the backend dropped %d of %d peers (%d left within %s); keeping them until a query after %s confirms it",
		ErrHoldingRemovals, len(dropped), peers, lost, g.confirm, g.since.Add(g.confirm).Format(time.TimeOnly))
}
