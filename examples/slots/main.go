// Command slots shows herd's slot sharding doing a cicada-style job: N
// workers on an embedded etcd split 1,024 slots; every round, each of
// 10,000 keys must be processed exactly once, by the owner of its slot.
// Between rounds the demo adds a worker, kills a worker, and kills the
// leader, and prints per round the slots per worker, the slots moved
// against the minimum, and the keys processed twice or never (always 0).
//
//	go run ./examples/slots -workers 3
//
// A killed worker stops without a word to the group (no acknowledgement,
// no resignation) and its coordinator drops out of etcd, so the leader
// gives its slots away only once OwnershipTTL has passed: the "waited" of
// the next round.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herd-go/herd/cluster"
	_ "github.com/herd-go/herd/cluster/etcd"
	"github.com/herd-go/herd/internal/embedetcd"
	"github.com/herd-go/herd/shard"
)

const keys = 10000

func main() {
	fs := flag.NewFlagSet("slots", flag.ContinueOnError)
	workers := fs.Int("workers", 3, "workers at the start, 2 to 16")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "slots:", err)
		os.Exit(1)
	}
}

// worker is one member of the group, with its own coordinator.
type worker struct {
	name  string
	id    string
	coord cluster.Coordinator
	group *shard.Group
	dead  bool
}

func run(ctx context.Context, out io.Writer, n int) error {
	if n < 2 || n > 16 {
		return fmt.Errorf("-workers %d: want 2 to 16", n)
	}
	srv, err := embedetcd.Start("")
	if err != nil {
		return fmt.Errorf("starting the embedded etcd: %w", err)
	}
	defer srv.Close()
	const rebalanceDelay, ownershipTTL = 300 * time.Millisecond, 2 * time.Second
	opts := []shard.Option{shard.WithName("cicada"), shard.WithRebalanceDelay(rebalanceDelay), shard.WithOwnershipTTL(ownershipTTL)}
	fmt.Fprintf(out, "embedded etcd at %s; %d workers share %d slots (RebalanceDelay %s, OwnershipTTL %s)\n",
		srv.Endpoint(), n, shard.DefaultSlots, rebalanceDelay, ownershipTTL)

	var all []*worker
	defer func() {
		for _, w := range all {
			_ = w.group.Close()
			_ = w.coord.Close()
		}
	}()
	start := func() (*worker, error) {
		w, err := startWorker(ctx, srv.Endpoint(), fmt.Sprintf("w%d", len(all)+1), opts)
		if err == nil {
			all = append(all, w)
		}
		return w, err
	}
	for range n {
		if _, err := start(); err != nil {
			return err
		}
	}

	plan := map[int]string{3: "add", 5: "kill", 7: "kill-leader"}
	var prev shard.Table
	failed := false
	for r := 1; r <= 9; r++ {
		event := ""
		switch plan[r] {
		case "add":
			w, err := start()
			if err != nil {
				return err
			}
			event = "added " + w.name
		case "kill", "kill-leader":
			alive := living(all)
			victim := alive[len(alive)-1]
			for _, w := range alive {
				if _, leads := w.group.Leading(); leads == (plan[r] == "kill-leader") {
					victim = w
					break
				}
			}
			kill(victim)
			event = "killed " + victim.name
			if plan[r] == "kill-leader" {
				event += " (the leader)"
			}
		}
		began := time.Now()
		table, err := settled(ctx, living(all), 30*time.Second)
		if err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		waited := time.Since(began)
		twice, never := process(living(all))
		line := fmt.Sprintf("round %d: %s", r, perWorker(table, all))
		if prev.Owners != nil {
			ids := make([]string, 0, len(all))
			for _, w := range living(all) {
				ids = append(ids, w.id)
			}
			moved, least := shard.Moved(prev, table), shard.Moved(prev, shard.Assign(prev, ids, len(prev.Owners)))
			line += fmt.Sprintf("; moved %d (minimum %d)", moved, least)
			failed = failed || moved != least
		}
		line += fmt.Sprintf("; keys twice %d, never %d", twice, never)
		if event != "" {
			line += fmt.Sprintf("; %s, table in force %s later", event, waited.Round(time.Millisecond))
		}
		fmt.Fprintln(out, line)
		failed = failed || twice != 0 || never != 0
		prev = table
	}
	if failed {
		return errors.New("a round processed a key twice or never, or moved more than the minimum")
	}
	fmt.Fprintln(out, "every key was processed exactly once in every round, and every move was the minimum")
	return nil
}

func startWorker(ctx context.Context, endpoint, name string, opts []shard.Option) (*worker, error) {
	env := map[string]string{"SW_CLUSTER": "etcd", "SW_CLUSTER_ETCD_ENDPOINTS": endpoint, "SW_CLUSTER_ETCD_SERVICE_NAME": "slots-example", "SW_CLUSTER_ETCD_TTL": "2s"}
	cfg, err := cluster.DefaultConfig(cluster.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		return nil, err
	}
	coord, err := cluster.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	self := cluster.Node{ID: cluster.NewID(), Address: cluster.Address{Host: "127.0.0.1", Port: 20200}}
	if err := coord.RegisterRemote(ctx, self); err != nil {
		coord.Close()
		return nil, err
	}
	g, err := shard.Join(coord, self.ID, opts...)
	if err != nil {
		coord.Close()
		return nil, err
	}
	return &worker{name: name, id: self.ID, coord: coord, group: g}, nil
}

// kill stops a worker without telling the group: its coordinator closes
// (leaving etcd), its group never acknowledges anything again.
func kill(w *worker) {
	w.dead = true
	_ = w.coord.Close()
}

func living(all []*worker) []*worker {
	var out []*worker
	for _, w := range all {
		if !w.dead {
			out = append(out, w)
		}
	}
	return out
}

// settled waits until every living worker reads one complete table, of
// living owners only, and owns its part of it.
func settled(ctx context.Context, ws []*worker, within time.Duration) (shard.Table, error) {
	deadline := time.Now().Add(within)
	for {
		ref := ws[0].group.Table()
		ok := ref.Owners != nil && !slices.Contains(ref.Owners, "")
		counts := ref.Counts()
		for _, w := range ws {
			t := w.group.Table()
			if t.Epoch != ref.Epoch || w.group.Owned().Len() != counts[w.id] || counts[w.id] == 0 {
				ok = false
			}
		}
		if ok && len(counts) == len(ws) {
			return ref, nil
		}
		if time.Now().After(deadline) {
			return shard.Table{}, fmt.Errorf("the table did not settle within %s", within)
		}
		select {
		case <-ctx.Done():
			return shard.Table{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// process runs one round: every worker goes through every key and handles
// those whose slot it holds. It returns how many keys were handled twice
// or more, and how many never.
func process(ws []*worker) (twice, never int) {
	var mu sync.Mutex
	handled := make([]int, keys)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			for k := range keys {
				slot := w.group.SlotOf(fmt.Sprintf("key-%d", k))
				_, release, ok := w.group.Hold(slot)
				if !ok {
					continue
				}
				mu.Lock()
				handled[k]++
				mu.Unlock()
				release()
			}
		})
	}
	wg.Wait()
	for _, n := range handled {
		switch {
		case n == 0:
			never++
		case n > 1:
			twice++
		}
	}
	return twice, never
}

func perWorker(t shard.Table, all []*worker) string {
	counts := t.Counts()
	var parts []string
	for _, w := range all {
		if w.dead {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d", w.name, counts[w.id]))
	}
	return strings.Join(parts, ", ")
}
