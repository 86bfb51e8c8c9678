package kubernetes

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/cluster/backend/leaserecord"
)

// leaseName is the coordination.k8s.io/v1 Lease of an election.
func leaseName(election string) string { return "herd-" + election }

// timing is the lease protocol's clock from the configuration.
func (c *Coordinator) timing() leaserecord.Timing {
	return leaserecord.Timing{TTL: c.cfg.ElectionTTL, RenewDeadline: leaserecord.DefaultRenewDeadline(c.cfg.ElectionTTL), RetryPeriod: c.cfg.ElectionRenewPeriod}
}

// Campaign takes the election's Lease the way client-go's leaderelection
// does (holderIdentity, renewTime, leaseDurationSeconds, replaced with the
// object's resourceVersion as the compare-and-swap), with two differences:
// the term is leaseTransitions, raised on every acquisition, even by the
// same node, and Done closes two thirds of the TTL after the start of the
// last successful renewal, a third of the TTL before anyone can take it.
func (c *Coordinator) Campaign(ctx context.Context, name string) (*cluster.Leadership, error) {
	id := c.self()
	entry, cctx, err := c.life.Elections.Begin(ctx, name, id)
	if err != nil {
		return nil, err
	}
	store := c.leaseStore(name)
	return leaserecord.Elect(cctx, entry, fmt.Sprintf("kubernetes: campaign for %q (Lease %s/%s)", name, c.cfg.Namespace, store.name), store, id, c.timing(), c.life.Go)
}

// Observe reads the election's Lease every electionRenewPeriod.
func (c *Coordinator) Observe(ctx context.Context, name string) <-chan cluster.Leader {
	store := c.leaseStore(name)
	return backend.Observe(ctx, c.electCtx, name, c.life.Go, func(ctx context.Context, publish func(cluster.Leader)) {
		leaserecord.Observe(ctx, store, c.timing(), publish)
	})
}

// leaseStore keeps a lease record in a Lease object.
type leaseStore struct {
	leases    coordclient.LeaseInterface
	namespace string
	name      string
}

func (c *Coordinator) leaseStore(election string) *leaseStore {
	return &leaseStore{leases: c.client.CoordinationV1().Leases(c.cfg.Namespace), namespace: c.cfg.Namespace, name: leaseName(election)}
}

// refused names the grant a forbidden request lacks.
func (s *leaseStore) refused(err error) error {
	if apierrors.IsForbidden(err) {
		return &leaserecord.RefusedError{Err: fmt.Errorf("%w (grant get, create and update on leases in API group coordination.k8s.io, namespace %s)", err, s.namespace)}
	}
	return err
}

func (s *leaseStore) Get(ctx context.Context) (leaserecord.Record, string, error) {
	l, err := s.leases.Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return leaserecord.Record{}, "", nil
	}
	if err != nil {
		return leaserecord.Record{}, "", s.refused(err)
	}
	var r leaserecord.Record
	if l.Spec.HolderIdentity != nil {
		r.Holder = *l.Spec.HolderIdentity
	}
	if l.Spec.LeaseTransitions != nil {
		r.Term = uint64(*l.Spec.LeaseTransitions)
	}
	if l.Spec.LeaseDurationSeconds != nil {
		r.TTLMillis = int64(*l.Spec.LeaseDurationSeconds) * 1000
	}
	return r, l.ResourceVersion, nil
}

func (s *leaseStore) Put(ctx context.Context, r leaserecord.Record, version string) (string, error) {
	now := metav1.NewMicroTime(time.Now())
	seconds := int32((r.TTLMillis + 999) / 1000)
	transitions := int32(r.Term)
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, ResourceVersion: version},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       &r.Holder,
			LeaseDurationSeconds: &seconds,
			RenewTime:            &now,
			LeaseTransitions:     &transitions,
		},
	}
	if r.Renewals == 0 {
		l.Spec.AcquireTime = &now
	}
	var err error
	if version == "" {
		l, err = s.leases.Create(ctx, l, metav1.CreateOptions{})
	} else {
		l, err = s.leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		return "", leaserecord.ErrConflict
	}
	if err != nil {
		return "", s.refused(err)
	}
	return l.ResourceVersion, nil
}

// Changed watches the Lease from version: any event wakes the candidate.
func (s *leaseStore) Changed(ctx context.Context, version string) <-chan struct{} {
	changed := make(chan struct{})
	go func() {
		defer close(changed)
		w, err := s.leases.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + s.name, ResourceVersion: version})
		if err != nil {
			<-ctx.Done() // no watch: the candidate reads on its own clock
			return
		}
		defer w.Stop()
		select {
		case <-w.ResultChan():
		case <-ctx.Done():
		}
	}()
	return changed
}

// Leading returns this node's term while it leads the election by its own
// knowledge (its Leadership's Done not closed): what an operator's report
// shows, where Observe may still name this node during an outage.
func (c *Coordinator) Leading(election string) (term uint64, ok bool) {
	return c.life.Leading(election)
}

// Campaigning reports whether this coordinator campaigns for or leads the
// election, so that package shard can refuse a group named like it.
func (c *Coordinator) Campaigning(election string) bool { return c.life.Campaigning(election) }

// RegisteredID is the ID of the node RegisterRemote registered; empty
// before it (or, on gossip, after the registration was withdrawn).
func (c *Coordinator) RegisteredID() string { return c.self() }
