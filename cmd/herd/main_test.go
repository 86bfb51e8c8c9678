package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/gossip"
	"github.com/herd-go/herd/internal/testsupport/testnode"
)

// herdBin is the command built once for every test: the tests run the real
// binary, as a user would.
var herdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herd-cmd-")
	if err != nil {
		panic(err)
	}
	herdBin = filepath.Join(dir, "herd")
	if out, err := exec.Command("go", "build", "-o", herdBin, ".").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("building cmd/herd: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// herd runs the binary with the environment a node on endpoint would have.
func herd(t *testing.T, endpoint string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, herdBin, args...)
	cmd.Env = nodeEnv(endpoint, env)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// startHerd starts the binary with env and args, for a command that runs
// until stopped (watch), and returns it, its standard output and what it
// writes to standard error.
func startHerd(t *testing.T, env []string, args ...string) (*exec.Cmd, io.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(herdBin, args...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout, &stderr
}

func nodeEnv(endpoint string, extra []string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "SW_CLUSTER=etcd", "SW_CLUSTER_ETCD_ENDPOINTS=" + endpoint}
	return append(env, extra...)
}

func TestNodes(t *testing.T) {
	nodes := testnode.Cluster(t, 2, testnode.Options{Meta: map[string]string{"zone": "a"}})
	endpoint := nodes[0].Endpoint

	out, errOut, code := herd(t, endpoint, nil, "nodes")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("want a header and two rows:\n%s", out)
	}
	for _, n := range nodes {
		if !strings.Contains(out, n.Self.ID) || !strings.Contains(out, n.Self.Address.String()) || !strings.Contains(out, "zone=a") {
			t.Errorf("node %s at %s missing from:\n%s", n.Self.ID, n.Self.Address, out)
		}
	}

	out, errOut, code = herd(t, endpoint, nil, "nodes", "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []cluster.Node
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 2 {
		t.Fatalf("-o json: %v, %d nodes:\n%s", err, len(got), out)
	}
	// The members' shape of /status/herd: lower-case names, no Go ones.
	if !strings.Contains(out, `"id": "`) || !strings.Contains(out, `"address": "`) || strings.Contains(out, `"ID"`) {
		t.Errorf("-o json is not in the reports' member shape:\n%s", out)
	}

	if _, errOut, code = herd(t, endpoint, nil, "nodes", "-o", "yaml"); code != exitUsage || !strings.Contains(errOut, "table or json") {
		t.Errorf("-o yaml: exit %d, %s", code, errOut)
	}
}

func TestWatchStreamsJoinsAndLeaves(t *testing.T) {
	endpoint := testnode.Etcd(t)
	first := testnode.Start(t, endpoint, testnode.Options{})

	cmd, stdout, stderr := startHerd(t, nodeEnv(endpoint, nil), "watch")
	defer cmd.Process.Kill()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	expect := func(event, id string) {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended; stderr: %s", stderr.String())
			}
			f := strings.Fields(l)
			if len(f) < 3 || f[1] != event || f[2] != id {
				t.Fatalf("line %q, want %s of %s", l, event, id)
			}
			if _, err := time.Parse("2006-01-02T15:04:05.000Z07:00", f[0]); err != nil {
				t.Fatalf("line %q does not start with a timestamp: %v", l, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s of %s within 10s; stderr: %s", event, id, stderr.String())
		}
	}
	expect("join", first.Self.ID)
	second := testnode.Start(t, endpoint, testnode.Options{})
	expect("join", second.Self.ID)
	second.Stop()
	expect("leave", second.Self.ID)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines { // drain until stdout closes
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGINT: %v (want exit 0); stderr: %s", err, stderr.String())
	}
}

func TestCheck(t *testing.T) {
	nodes := testnode.Cluster(t, 1, testnode.Options{})
	endpoint := nodes[0].Endpoint
	taken := nodes[0].Self

	out, errOut, code := herd(t, endpoint, nil, "check")
	if code != exitOK || !strings.Contains(out, "query      ok: 1 members") || !strings.Contains(out, "register   ok") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	// Another process under a live node's ID is refused, naming the setting.
	out, errOut, code = herd(t, endpoint, []string{"SW_CLUSTER_NODE_ID=" + taken.ID}, "check", "-bind", "127.0.0.1:1")
	if code != exitRefused || !strings.Contains(out, "REFUSED") || !strings.Contains(out, "SW_CLUSTER_NODE_ID") {
		t.Fatalf("a taken ID: exit %d:\n%s%s", code, out, errOut)
	}
	// Another ID at a live node's address is refused too.
	out, _, code = herd(t, endpoint, nil, "check", "-bind", taken.Address.String())
	if code != exitRefused || !strings.Contains(out, "already registered at "+taken.Address.String()) {
		t.Fatalf("a taken address: exit %d:\n%s", code, out)
	}
	// A bad value names its key.
	_, errOut, code = herd(t, endpoint, []string{"SW_CLUSTER_ETCD_TTL=soon"}, "check")
	if code != exitUsage || !strings.Contains(errOut, "cluster.etcd.ttl") {
		t.Fatalf("a bad TTL: exit %d: %s", code, errOut)
	}
	// Values a node would refuse at start are refused before "config ok"
	// is said, and before anything is connected: a TTL below the minimum
	// (decoded, it is a valid duration), and TLS files that do not exist.
	for _, bad := range []struct{ env, key string }{
		{"SW_CLUSTER_ETCD_TTL=1s", "cluster.etcd.ttl"},
		{"SW_CLUSTER_TLS_CA_FILE=/nope/ca.pem", "/nope/ca.pem"},
	} {
		env := []string{bad.env}
		if strings.HasPrefix(bad.env, "SW_CLUSTER_TLS") {
			env = append(env, "SW_CLUSTER_TLS_CERT_FILE=/nope/cert.pem", "SW_CLUSTER_TLS_KEY_FILE=/nope/key.pem")
		}
		out, errOut, code = herd(t, endpoint, env, "check")
		if code != exitUsage || !strings.Contains(errOut, bad.key) || strings.Contains(out, "config     ok") {
			t.Errorf("%s: exit %d, want %d naming %s and no \"config ok\":\n%s%s", bad.env, code, exitUsage, bad.key, out, errOut)
		}
	}
	_, errOut, code = herd(t, endpoint, []string{"SW_CLUSTER=etc"}, "check")
	if code != exitUsage || !strings.Contains(errOut, "etc") {
		t.Fatalf("an unknown backend: exit %d: %s", code, errOut)
	}
	// A wildcard host is no address for peers to dial.
	_, errOut, code = herd(t, endpoint, nil, "check", "-bind", "0.0.0.0:11800")
	if code != exitUsage || !strings.Contains(errOut, "internalComHost") {
		t.Fatalf("a wildcard bind: exit %d: %s", code, errOut)
	}
	// Nothing listens at the endpoint: unreachable.
	_, errOut, code = herd(t, "127.0.0.1:1", []string{"SW_CLUSTER_ETCD_DIAL_TIMEOUT=500ms"}, "-timeout", "2s", "check")
	if code != exitUnreachable || !strings.Contains(errOut, "etcd") {
		t.Fatalf("no server: exit %d: %s", code, errOut)
	}
}

func TestLeader(t *testing.T) {
	nodes := testnode.Cluster(t, 1, testnode.Options{})
	endpoint := nodes[0].Endpoint
	l, err := nodes[0].Coord.Campaign(context.Background(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(context.Background())

	out, errOut, code := herd(t, endpoint, nil, "leader", "jobs")
	want := "jobs: " + nodes[0].Self.ID + " leads, term "
	if code != exitOK || !strings.HasPrefix(out, want) {
		t.Fatalf("exit %d: %q%s, want %q…", code, out, errOut, want)
	}
	if out, _, code = herd(t, endpoint, nil, "leader", "nobody-here"); code != exitOK || out != "nobody-here: nobody leads\n" {
		t.Fatalf("an election without a leader: exit %d: %q", code, out)
	}
	if _, errOut, code = herd(t, endpoint, nil, "leader"); code != exitUsage || !strings.Contains(errOut, "election name") {
		t.Fatalf("no name: exit %d: %s", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Commands:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"-h"}, exitOK, "Exit codes"},
		{[]string{"-timeout", "0s", "nodes"}, exitUsage, "want a positive duration"},
		{[]string{"-timeout", "5", "nodes"}, exitUsage, "want a duration with a unit, such as 5s"},
		{[]string{"nodes", "-timeout", "5"}, exitUsage, "want a duration with a unit, such as 5s"},
		{[]string{"node"}, exitUsage, "did you mean nodes?"},
		{[]string{"leadr", "x"}, exitUsage, "did you mean leader?"},
		{[]string{"nodes", "-bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"-config", "/nonexistent/herd.yaml", "nodes"}, exitUsage, "/nonexistent/herd.yaml"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("herd %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{{[]string{"help"}, "Commands:"}, {[]string{"-version"}, "herd "}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != exitOK || !strings.Contains(out.String(), tc.want) {
			t.Errorf("herd %v: exit %d, stdout %q; want exit 0 and %q", tc.args, code, out.String(), tc.want)
		}
	}
}

// TestGlobalFlagsAfterTheCommand: -timeout and -config may follow the
// subcommand, as users write them.
func TestGlobalFlagsAfterTheCommand(t *testing.T) {
	nodes := testnode.Cluster(t, 1, testnode.Options{})
	out, errOut, code := herd(t, nodes[0].Endpoint, nil, "nodes", "-timeout", "5s")
	if code != exitOK || !strings.Contains(out, nodes[0].Self.ID) {
		t.Fatalf("nodes -timeout 5s: exit %d:\n%s%s", code, out, errOut)
	}
	_, errOut, code = herd(t, nodes[0].Endpoint, nil, "nodes", "-config", "/nonexistent/herd.yaml")
	if code != exitUsage || !strings.Contains(errOut, "/nonexistent/herd.yaml") {
		t.Fatalf("nodes -config …: exit %d: %s", code, errOut)
	}
}

// gossipCluster starts n registered gossip members on loopback, in a
// cluster named for the test, and returns them and the environment that
// points the command at them.
func gossipCluster(t *testing.T, n int) ([]*gossip.Coordinator, []cluster.Node, []string) {
	t.Helper()
	name := "t" + cluster.NewID()[:10]
	var cs []*gossip.Coordinator
	var ns []cluster.Node
	seeds := ""
	for i := range n {
		cfg := gossip.DefaultConfig()
		cfg.BindAddr, cfg.BindPort, cfg.Profile, cfg.ClusterName, cfg.Seeds = "127.0.0.1", 0, "local", name, seeds
		c, err := gossip.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		node := cluster.Node{ID: fmt.Sprintf("node-%d-%s", i, name), Address: cluster.Address{Host: "127.0.0.1", Port: 21000 + i}}
		if err := c.RegisterRemote(context.Background(), node); err != nil {
			t.Fatal(err)
		}
		seeds = c.Addr()
		cs, ns = append(cs, c), append(ns, node)
	}
	env := []string{"SW_CLUSTER=gossip", "SW_CLUSTER_GOSSIP_SEEDS=" + seeds, "SW_CLUSTER_GOSSIP_PROFILE=local", "SW_CLUSTER_GOSSIP_CLUSTER_NAME=" + name}
	return cs, ns, env
}

// TestGossip runs every subcommand against a live gossip cluster: the
// command joins as an observer on a port of its own, waits for a seed's
// view, and fails with exit 3 naming the seeds when none answers.
func TestGossip(t *testing.T) {
	cs, ns, env := gossipCluster(t, 3)
	for _, c := range cs {
		for _, n := range ns {
			waitMember(t, c, n.ID)
		}
	}
	l, err := cs[1].Campaign(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(context.Background())

	for range 3 { // at once, every time: no run may read before its join
		out, errOut, code := herd(t, "", env, "nodes", "-o", "json")
		var got []cluster.Node
		if err := json.Unmarshal([]byte(out), &got); code != exitOK || err != nil || len(got) != 3 {
			t.Fatalf("nodes -o json: exit %d, %v, %d nodes:\n%s%s", code, err, len(got), out, errOut)
		}
	}
	out, errOut, code := herd(t, "", env, "leader", "demo")
	if want := "demo: " + ns[1].ID + " leads, term "; code != exitOK || !strings.HasPrefix(out, want) {
		t.Fatalf("leader demo: exit %d: %q%s, want %q…", code, out, errOut, want)
	}
	out, errOut, code = herd(t, "", env, "check", "-bind", "127.0.0.1:1")
	if code != exitOK || !strings.Contains(out, "query      ok: 3 members") {
		t.Fatalf("check: exit %d:\n%s%s", code, out, errOut)
	}
	out, errOut, code = herd(t, "", append(env, "SW_CLUSTER_NODE_ID="+ns[0].ID), "check", "-bind", "127.0.0.1:1")
	if code != exitRefused || !strings.Contains(out, "REFUSED") {
		t.Fatalf("check with a taken ID: exit %d:\n%s%s", code, out, errOut)
	}

	// watch: the members at start, as joins.
	cmd, pipe, stderr := startHerd(t, nodeEnv("", env), "-timeout", "5s", "watch")
	joined := map[string]bool{}
	lines := bufio.NewScanner(pipe)
	for len(joined) < len(ns) && lines.Scan() {
		if f := strings.Fields(lines.Text()); len(f) >= 3 && f[1] == "join" {
			joined[f[2]] = true
		}
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	_, _ = io.Copy(io.Discard, pipe)
	_ = cmd.Wait()
	for _, n := range ns {
		if !joined[n.ID] {
			t.Errorf("watch did not show %s joining (saw %v); stderr: %s", n.ID, joined, stderr.String())
		}
	}

	// No seed answers: exit 3, naming the setting, within the timeout.
	dead := append(env, "SW_CLUSTER_GOSSIP_SEEDS=127.0.0.1:1")
	for _, sub := range [][]string{{"nodes"}, {"check"}, {"leader", "demo"}} {
		began := time.Now()
		_, errOut, code := herd(t, "", dead, append([]string{"-timeout", "2s"}, sub...)...)
		if code != exitUnreachable || !strings.Contains(errOut, "SW_CLUSTER_GOSSIP_SEEDS") {
			t.Errorf("%v with a dead seed: exit %d: %s", sub, code, errOut)
		}
		if took := time.Since(began); took > 10*time.Second {
			t.Errorf("%v with a dead seed took %s with -timeout 2s", sub, took)
		}
	}
	if _, errOut, code := herd(t, "", append(env, "SW_CLUSTER_GOSSIP_SEEDS="), "nodes"); code != exitUsage || !strings.Contains(errOut, "SW_CLUSTER_GOSSIP_SEEDS") {
		t.Errorf("no seeds: exit %d: %s", code, errOut)
	}
}

func waitMember(t *testing.T, c *gossip.Coordinator, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ns, _ := c.QueryRemoteNodes(context.Background())
		for _, n := range ns {
			if n.ID == id {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not in a member's view within 10s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
