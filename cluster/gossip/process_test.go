package gossip_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/gossip"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
)

// The multi-process tests run each node in its own OS process: this test
// binary again, as TestChildNode. A child prints its gossip address, then
// its view after every change, and leaves gracefully when its stdin closes.

const childEnv = "HERD_GOSSIP_CHILD"

func TestChildNode(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("the body of a child process of the multi-process tests")
	}
	sent := countSent()
	cfg := testConfig(os.Getenv("HERD_GOSSIP_CLUSTER"), os.Getenv("HERD_GOSSIP_SEEDS"))
	var opts []cluster.Option
	// For a slow or failed run: memberlist's own log of each child, which
	// says when and why it suspected and declared each member.
	if d := os.Getenv("HERD_GOSSIP_LOGDIR"); d != "" {
		f, err := os.Create(filepath.Join(d, os.Getenv(childEnv)+".log"))
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		opts = append(opts, cluster.WithLogger(slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	c, err := gossip.New(context.Background(), cfg, opts...)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	n := clusterwait.NewNode()
	n.ID = os.Getenv(childEnv)
	if err := c.RegisterRemote(context.Background(), n); err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println("ADDR", c.Addr())
	go func() {
		for ns := range c.Watch(context.Background()) {
			fmt.Println("VIEW", strings.Join(clusterwait.IDs(ns), ","))
		}
	}()
	// Each line asks for the bytes of gossip sent so far; EOF means leave.
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fmt.Println("BYTES", sent.total())
	}
	if err := c.Close(); err != nil {
		fmt.Println("ERR", err)
	}
	os.Exit(0)
}

// proc is one child node.
type proc struct {
	id    string
	addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	ready time.Time // when it printed its address, registered
	bytes chan int64

	mu        sync.Mutex
	view      []string
	at        time.Time            // when view last changed
	firstSeen map[string]time.Time // when each ID entered the view
	goneAt    map[string]time.Time // when each ID last left it
}

// sentBytes asks the node how many bytes of gossip it has sent.
func (p *proc) sentBytes(t testing.TB) int64 {
	if _, err := io.WriteString(p.stdin, "bytes\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-p.bytes:
		return n
	case <-time.After(5 * time.Second):
		t.Fatalf("node %s did not answer", p.id)
		return 0
	}
}

func (p *proc) seenAt(id string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.firstSeen[id]
	return at, ok
}

func (p *proc) lostAt(id string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.goneAt[id]
	return at, ok
}

func (p *proc) sees() ([]string, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.view, p.at
}

// startProc starts a child node with ID id in the cluster, joining seeds.
func startProc(t testing.TB, id, clusterName, seeds string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildNode$")
	cmd.Env = append(os.Environ(), childEnv+"="+id, "HERD_GOSSIP_CLUSTER="+clusterName, "HERD_GOSSIP_SEEDS="+seeds)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{id: id, cmd: cmd, stdin: stdin, bytes: make(chan int64, 1), firstSeen: map[string]time.Time{}, goneAt: map[string]time.Time{}}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.SplitN(sc.Text(), " ", 2)
			switch {
			case len(f) == 2 && f[0] == "ADDR":
				p.ready = time.Now()
				addr <- f[1]
			case len(f) == 2 && f[0] == "BYTES":
				n, _ := strconv.ParseInt(f[1], 10, 64)
				p.bytes <- n
			case len(f) >= 1 && f[0] == "VIEW":
				var ids []string
				if len(f) == 2 && f[1] != "" {
					ids = strings.Split(strings.ReplaceAll(f[1], "*", ""), ",")
				}
				now := time.Now()
				p.mu.Lock()
				for _, id := range ids {
					if _, ok := p.firstSeen[id]; !ok {
						p.firstSeen[id] = now
					}
				}
				for _, id := range p.view {
					if !slices.Contains(ids, id) {
						p.goneAt[id] = now
					}
				}
				p.view, p.at = ids, now
				p.mu.Unlock()
			case len(f) == 2 && f[0] == "ERR":
				t.Errorf("node %s: %s", id, f[1])
			}
		}
	}()
	select {
	case p.addr = <-addr:
	case <-time.After(10 * time.Second):
		t.Fatalf("node %s did not start", id)
	}
	return p
}

// waitViews waits until every proc in ps sees exactly want, and returns
// when the last of them saw it.
func waitViews(t testing.TB, ps []*proc, want []string, within time.Duration, what string) time.Time {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	var last time.Time
	clusterwait.WaitUntil(t, within, what, func() bool {
		last = time.Time{}
		for _, p := range ps {
			v, at := p.sees()
			if !slices.Equal(v, want) {
				return false
			}
			if at.After(last) {
				last = at
			}
		}
		return true
	})
	return last
}

func ids(ps []*proc) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.id
	}
	return out
}

func without(ps []*proc, gone *proc) []*proc {
	return slices.DeleteFunc(slices.Clone(ps), func(p *proc) bool { return p == gone })
}

// detectionBound is the longest the local profile may take to drop a
// member that stopped answering from every view, in a cluster of members
// (the lost one included), with five seconds for scheduling under -race:
// each other member probes it within a round of probes, one per
// ProbeInterval per member, and a suspicion lasts at most
// SuspicionMaxTimeoutMult times its minimum (SuspicionMult probe
// intervals). The maximum is no rare case in a small cluster: memberlist
// sends each gossip message only RetransmitMult (2) times, to random
// members that include the lost one and members that died in the last
// GossipToTheDeadTime, so a suspecter may never hear another's
// confirmation, nor its verdict, and a push/pull carrying that verdict only
// counts as its own suspicion. A CI run took 20.1 s to drop a SIGSTOPped
// process; here it took 19.9 s once in six (HERD_GOSSIP_LOGDIR showed
// "suspect timeout reached (0 peer confirmations)").
func detectionBound(members int) time.Duration {
	mc := memberlist.DefaultLocalConfig()
	probeRound := time.Duration(members) * mc.ProbeInterval
	longestSuspicion := time.Duration(mc.SuspicionMaxTimeoutMult*mc.SuspicionMult) * mc.ProbeInterval
	return probeRound + longestSuspicion + 5*time.Second
}

// TestProcesses: five nodes, each its own process, converge; a graceful
// leave, a SIGKILL and a SIGSTOP (a partition: the process neither answers
// nor leaves) are each seen by every other node, and the stopped node is
// back once resumed.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	clusterName := "p" + cluster.NewID()[:10]
	var ps []*proc
	for i := range 5 {
		seeds := ""
		if i > 0 {
			seeds = ps[0].addr
		}
		ps = append(ps, startProc(t, fmt.Sprintf("node-%d", i), clusterName, seeds))
	}
	waitViews(t, ps, ids(ps), 10*time.Second, "all five processes see all five")

	leaver := ps[1]
	left := time.Now()
	_ = leaver.stdin.Close()
	ps = without(ps, leaver)
	seen := waitViews(t, ps, ids(ps), 3*time.Second, "a graceful leave seen by every other process")
	t.Logf("graceful leave seen by all %d others in %v", len(ps), seen.Sub(left).Round(time.Millisecond))
	if err := leaver.cmd.Wait(); err != nil {
		t.Errorf("the leaving process: %v", err)
	}

	victim := ps[1]
	killed := time.Now()
	_ = victim.cmd.Process.Signal(syscall.SIGKILL)
	ps = without(ps, victim)
	seen = waitViews(t, ps, ids(ps), detectionBound(len(ps)+1), "a SIGKILLed process dropped by every other")
	t.Logf("SIGKILL detected by all %d others in %v", len(ps), seen.Sub(killed).Round(time.Millisecond))

	stopped := ps[2]
	paused := time.Now()
	_ = stopped.cmd.Process.Signal(syscall.SIGSTOP)
	rest := without(ps, stopped)
	seen = waitViews(t, rest, ids(rest), detectionBound(len(ps)), "a stopped (partitioned) process dropped by the others")
	t.Logf("SIGSTOP detected by both others in %v", seen.Sub(paused).Round(time.Millisecond))
	_ = stopped.cmd.Process.Signal(syscall.SIGCONT)
	waitViews(t, ps, ids(ps), 10*time.Second, "the resumed process back in every view, its own included")
}

// BenchmarkProcesses measures a gossip cluster of separate processes on
// this host (the local profile): how long a join and a graceful leave take
// to reach every other process, how long a SIGKILL takes to be detected by
// all, and the gossip bytes a node sends per second at rest.
//
//	go test ./cluster/gossip -run '^$' -bench Processes -benchtime 1x
func BenchmarkProcesses(b *testing.B) {
	for _, n := range []int{5, 20} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for range b.N {
				measureProcesses(b, n)
			}
		})
	}
}

func measureProcesses(b *testing.B, n int) {
	clusterName := "b" + cluster.NewID()[:10]
	var ps []*proc
	var joins, leaves []time.Duration
	for i := range n {
		seeds := ""
		if i > 0 {
			seeds = ps[0].addr
		}
		p := startProc(b, fmt.Sprintf("node-%d", i), clusterName, seeds)
		ps = append(ps, p)
		waitViews(b, ps, ids(ps), 30*time.Second, "the newcomer in every view")
		if i > 0 {
			joins = append(joins, lastSeen(ps, p.id).Sub(p.ready))
		}
	}
	// At rest: every node is in every view and nothing changes.
	time.Sleep(2 * time.Second)
	before, start := sentBy(b, ps), time.Now()
	time.Sleep(10 * time.Second)
	rate := float64(sentBy(b, ps)-before) / time.Since(start).Seconds() / float64(len(ps))

	// Graceful leaves of a third of the nodes, one at a time.
	for range max(1, n/3) {
		leaver := ps[len(ps)-1]
		ps = ps[:len(ps)-1]
		left := time.Now()
		_ = leaver.stdin.Close()
		waitViews(b, ps, ids(ps), 30*time.Second, "a leave seen by all")
		var last time.Time
		for _, p := range ps {
			if at, _ := p.lostAt(leaver.id); at.After(last) {
				last = at
			}
		}
		leaves = append(leaves, last.Sub(left))
	}
	victim := ps[len(ps)-1]
	ps = ps[:len(ps)-1]
	killed := time.Now()
	_ = victim.cmd.Process.Signal(syscall.SIGKILL)
	detected := waitViews(b, ps, ids(ps), 60*time.Second, "a SIGKILL seen by all").Sub(killed)

	join50, join99 := clusterwait.Percentiles(joins)
	leave50, leave99 := clusterwait.Percentiles(leaves)
	b.ReportMetric(float64(join50.Microseconds())/1000, "join-p50-ms")
	b.ReportMetric(float64(join99.Microseconds())/1000, "join-p99-ms")
	b.ReportMetric(float64(leave50.Microseconds())/1000, "leave-p50-ms")
	b.ReportMetric(float64(leave99.Microseconds())/1000, "leave-p99-ms")
	b.ReportMetric(float64(detected.Milliseconds()), "sigkill-detected-ms")
	b.ReportMetric(rate, "bytes/s/node-at-rest")
	b.Logf("%d processes: join p50 %v p99 %v (%d joins); leave p50 %v p99 %v (%d); SIGKILL seen by all in %v (the local profile suspects for at least 3s); %.0f B/s per node at rest",
		n, join50, join99, len(joins), leave50, leave99, len(leaves), detected, rate)
	for _, p := range ps {
		_ = p.stdin.Close()
	}
}

// lastSeen is when the last of ps first saw id.
func lastSeen(ps []*proc, id string) time.Time {
	var last time.Time
	for _, p := range ps {
		if at, _ := p.seenAt(id); at.After(last) {
			last = at
		}
	}
	return last
}

func sentBy(b *testing.B, ps []*proc) int64 {
	var sum int64
	for _, p := range ps {
		sum += p.sentBytes(b)
	}
	return sum
}
