package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/remote/peertls"
)

// nodes prints the members once, as a table or as JSON.
func nodes(ctx context.Context, e *env, args []string) error {
	fs := e.flags("nodes", "[-o table|json]")
	output := fs.String("o", "table", "output format: table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return fail(exitUsage, "-o %q: want table or json", *output)
	}
	cfg, c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ns, err := e.query(ctx, c, cfg.Backend)
	if err != nil {
		return err
	}
	sortNodes(ns)
	if *output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ns)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tMETA")
	for _, n := range ns {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n.ID, n.Address, meta(n))
	}
	return tw.Flush()
}

// watch prints every join and leave until interrupted (or the backend's
// watch ends), each with a timestamp: the members at start as joins first.
func watch(ctx context.Context, e *env, args []string) error {
	fs := e.flags("watch", "[-o text|json]")
	output := fs.String("o", "text", "output format: text (one line per change) or json (one object per line)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fail(exitUsage, "-o %q: want text or json", *output)
	}
	cfg, c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	// A first query makes an unreachable backend an error, not silence.
	if _, err := e.query(ctx, c, cfg.Backend); err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	print := func(event string, n cluster.Node) error {
		now := time.Now()
		if *output == "json" {
			return enc.Encode(struct {
				Time  time.Time    `json:"time"`
				Event string       `json:"event"`
				Node  cluster.Node `json:"node"`
			}{now, event, n})
		}
		_, err := fmt.Fprintf(e.stdout, "%s %-6s %s %s %s\n", now.Format("2006-01-02T15:04:05.000Z07:00"), event, n.ID, n.Address, meta(n))
		return err
	}
	known := map[string]cluster.Node{}
	for ns := range c.Watch(ctx) {
		now := map[string]cluster.Node{}
		for _, n := range ns {
			now[n.ID] = n
		}
		for _, id := range slices.Sorted(maps.Keys(now)) {
			if old, ok := known[id]; !ok || old.Address != now[id].Address {
				if err := print("join", now[id]); err != nil {
					return err
				}
			}
		}
		for _, id := range slices.Sorted(maps.Keys(known)) {
			if n, ok := now[id]; !ok || n.Address != known[id].Address {
				if err := print("leave", known[id]); err != nil {
					return err
				}
			}
		}
		known = now
	}
	if ctx.Err() != nil {
		return nil // interrupted: the normal end
	}
	return fail(exitUnreachable, "the %s backend's watch ended", cfg.Backend)
}

// check validates the configuration, reaches the backend, times a query,
// and says whether a node started with this configuration (serving at
// -bind) would be accepted. It writes nothing to the backend.
func check(ctx context.Context, e *env, args []string) error {
	fs := e.flags("check", "[-bind HOST:PORT]")
	bind := fs.String("bind", "127.0.0.1:11800", "the address the node's gRPC server would listen on (cluster.<backend>.internalComHost/Port override it, as in a node)")
	if err := parse(fs, args); err != nil {
		return err
	}
	out := e.stdout
	cfg, err := e.config()
	if err != nil {
		return err
	}
	source := "herd's built-in configuration and the environment"
	if e.configFile != "" {
		source = e.configFile + " and the environment"
	}
	// Everything a node would refuse at start is checked before anything
	// is said to be ok: the backend's section as New reads it, and the
	// peer TLS files as peertls.Load reads them.
	if err := cluster.Check(cfg); err != nil {
		return &failure{exitUsage, err}
	}
	creds, err := peertls.Load(cfg)
	if err != nil {
		return &failure{exitUsage, err}
	}
	self, err := cfg.SelfNode(*bind)
	if err != nil {
		return &failure{exitUsage, fmt.Errorf("the node this configuration describes: %w", err)}
	}
	fmt.Fprintf(out, "config     ok: cluster.selector is %q (from %s)\n", cfg.Backend, source)
	if creds.Enabled() {
		fmt.Fprintln(out, "tls        ok: mutual TLS between peers; the files in cluster.tls load and match")
	} else {
		fmt.Fprintln(out, "tls        ok: plaintext between peers (cluster.tls names no files)")
	}
	fmt.Fprintf(out, "self       ok: a node would register as %s at %s\n", idOrGenerated(cfg, self), self.Address)

	started := time.Now()
	_, c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(out, "connect    ok: %s in %s\n", cfg.Backend, time.Since(started).Round(time.Microsecond))
	var best time.Duration
	var ns []cluster.Node
	for i := range 3 {
		started := time.Now()
		if ns, err = e.query(ctx, c, cfg.Backend); err != nil {
			return err
		}
		if rtt := time.Since(started); i == 0 || rtt < best {
			best = rtt
		}
	}
	fmt.Fprintf(out, "query      ok: %d members; round trip %s (best of 3)\n", len(ns), best.Round(time.Microsecond))

	var problems []string
	for _, n := range ns {
		if n.ID == self.ID {
			if err := backend.CheckTakeover(self, n); err != nil {
				problems = append(problems, err.Error())
			}
		} else if n.Address == self.Address {
			problems = append(problems, fmt.Sprintf("member %s is already registered at %s: two nodes at one address would be merged into one by every peer; "+
				"give this node another address (the -bind port, or cluster.%s.internalComHost/internalComPort)", n.ID, n.Address, cfg.Backend))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(out, "register   REFUSED:\n  %s\n", strings.Join(problems, "\n  "))
		return &failure{exitRefused, errors.New("a node with this configuration would be refused (see above)")}
	}
	fmt.Fprintln(out, "register   ok: the ID and address are free (checked against the members; permissions to write are not tested)")
	return nil
}

func idOrGenerated(cfg *cluster.Config, self cluster.Node) string {
	if cfg.NodeID == "" {
		return "a generated ID (cluster.nodeId / SW_CLUSTER_NODE_ID is empty)"
	}
	return self.ID
}

// leader prints who leads an election; with -f it follows changes.
func leader(ctx context.Context, e *env, args []string) error {
	fs := e.flags("leader", "[-f] NAME")
	follow := fs.Bool("f", false, "follow: print every change of leader until interrupted")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fail(exitUsage, "want one election name, got %d arguments", fs.NArg())
	}
	name := fs.Arg(0)
	if err := cluster.CheckElection(name); err != nil {
		return &failure{exitUsage, err}
	}
	cfg, c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	leaders := c.Observe(octx, name)
	first := time.NewTimer(e.timeout)
	defer first.Stop()
	for {
		select {
		case l, ok := <-leaders:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fail(exitUnreachable, "the %s backend stopped answering about election %q", cfg.Backend, name)
			}
			first.Stop()
			if l.ID == "" {
				fmt.Fprintf(e.stdout, "%s: nobody leads\n", name)
			} else {
				fmt.Fprintf(e.stdout, "%s: %s leads, term %d\n", name, l.ID, l.Term)
			}
			if !*follow {
				return nil
			}
		case <-first.C:
			return fail(exitUnreachable, "no answer about election %q from the %s backend within %s", name, cfg.Backend, e.timeout)
		}
	}
}

func sortNodes(ns []cluster.Node) {
	slices.SortFunc(ns, func(a, b cluster.Node) int {
		return cmp.Or(cmp.Compare(a.Address.String(), b.Address.String()), cmp.Compare(a.ID, b.ID))
	})
}

func meta(n cluster.Node) string {
	parts := make([]string, 0, len(n.Meta))
	for _, k := range slices.Sorted(maps.Keys(n.Meta)) {
		parts = append(parts, k+"="+n.Meta[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}
