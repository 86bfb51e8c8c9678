package leaserecord_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/cluster/backend/leaserecord"
)

// record is a Store over one value with compare-and-swap: what a server
// without a lock offers (a Kubernetes object's resourceVersion, a Nacos
// config's MD5).
type record struct {
	mu      sync.Mutex
	rec     leaserecord.Record
	version int
}

func (r *record) Get(context.Context) (leaserecord.Record, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.version == 0 {
		return leaserecord.Record{}, "", nil
	}
	return r.rec, strconv.Itoa(r.version), nil
}

func (r *record) Put(_ context.Context, rec leaserecord.Record, version string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if current := map[bool]string{true: strconv.Itoa(r.version), false: ""}[r.version > 0]; version != current {
		return "", leaserecord.ErrConflict
	}
	r.rec, r.version = rec, r.version+1
	return strconv.Itoa(r.version), nil
}

// A backend's Campaign over a Store: begin an entry in the coordinator's
// book, and let Elect campaign and then keep the lease.
func ExampleElect() {
	var book backend.Book // a backend.Lifecycle's Elections, in a backend
	store := &record{}
	timing := leaserecord.Timing{TTL: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}
	var wg sync.WaitGroup

	entry, cctx, err := book.Begin(context.Background(), "compactor", "node-a")
	if err != nil {
		panic(err)
	}
	lead, err := leaserecord.Elect(cctx, entry, `memory: campaign for "compactor"`, store, "node-a", timing, wg.Go)
	if err != nil {
		panic(err)
	}
	rec, _, _ := store.Get(context.Background())
	fmt.Println("leader", rec.Holder, "term", lead.Term())
	if err := book.Close(time.Second); err != nil { // Close resigns: the record is released
		panic(err)
	}
	wg.Wait()
	rec, _, _ = store.Get(context.Background())
	fmt.Printf("holder after Close: %q\n", rec.Holder)
	// Output:
	// leader node-a term 1
	// holder after Close: ""
}
