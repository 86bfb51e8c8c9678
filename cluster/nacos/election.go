package nacos

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
	"github.com/herd-go/herd/cluster/backend/leaserecord"
)

// Nacos 2 has no lock, so an election is a lease record in Nacos config,
// replaced with compare-and-swap on its content's MD5 (the casMd5 header of
// the config publish API), the protocol client-go uses over a Lease object.

// ErrNoCompareAndSwap: the server took a config publish whose casMd5 did not
// match, so it cannot fence a deposed leader and herd does not elect on it.
var ErrNoCompareAndSwap = errors.New("nacos: the server does not honour casMd5 on config publishes, so it cannot fence an election")

// electionDataID is the config data ID of an election's lease record.
func (c *Coordinator) electionDataID(name string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, c.cfg.ServiceName)
	return "herd.election." + safe + "." + name
}

// recordDataID is the config data ID of a record.
func (c *Coordinator) recordDataID(name string) string {
	return strings.Replace(c.electionDataID(name), "herd.election.", "herd.record.", 1)
}

func (c *Coordinator) timing() leaserecord.Timing {
	return leaserecord.Timing{TTL: c.cfg.ElectionTTL, RenewDeadline: leaserecord.DefaultRenewDeadline(c.cfg.ElectionTTL), RetryPeriod: c.cfg.ElectionRenewPeriod}
}

// Campaign takes the election's lease record in Nacos config. Done closes
// two thirds of cluster.nacos.electionTTL after the start of the last
// successful renewal, a third of the TTL before any candidate may take the
// record; the term is raised by every acquisition. The first campaign checks
// that the server honours compare-and-swap, and fails with
// ErrNoCompareAndSwap if not.
func (c *Coordinator) Campaign(ctx context.Context, name string) (*cluster.Leadership, error) {
	id := c.selfID()
	entry, cctx, err := c.life.Elections.Begin(ctx, name, id)
	if err != nil {
		return nil, err
	}
	store := c.configStore(name)
	if err := c.casChecked(cctx, store); err != nil {
		entry.Forget()
		return nil, err
	}
	return leaserecord.Elect(cctx, entry, fmt.Sprintf("nacos: campaign for %q (config %s)", name, store.dataID), store, id, c.timing(), c.life.Go)
}

// casChecked checks once per coordinator that the server refuses a publish
// whose casMd5 does not match.
func (c *Coordinator) casChecked(ctx context.Context, s *configStore) error {
	c.casOnce.Lock()
	defer c.casOnce.Unlock()
	if c.casOK {
		return nil
	}
	probe := *s
	probe.dataID = c.electionDataID("cas-probe")
	// Nacos creates an absent config whatever its casMd5 (a concurrent
	// create fails on the table's unique key): the probe needs one present.
	_, version, err := probe.Get(ctx)
	if err == nil && version == "" {
		_, err = probe.Put(ctx, leaserecord.Record{}, "")
		if errors.Is(err, leaserecord.ErrConflict) {
			err = nil // another node's probe created it
		}
	}
	if err != nil {
		return fmt.Errorf("nacos: preparing config %s to check compare-and-swap: %w", probe.dataID, err)
	}
	rec := leaserecord.Record{Renewals: 1}
	if _, err := probe.Put(ctx, rec, "not-the-md5-of-anything"); err == nil {
		return fmt.Errorf("%w (%s took a publish of %s with a wrong casMd5; the Alibaba Nacos server 2.x refuses it)", ErrNoCompareAndSwap, s.base, probe.dataID)
	} else if !errors.Is(err, leaserecord.ErrConflict) {
		return fmt.Errorf("nacos: checking compare-and-swap on config %s: %w", probe.dataID, err)
	}
	c.casOK = true
	return nil
}

// Observe reads the election's lease record every electionRenewPeriod.
func (c *Coordinator) Observe(ctx context.Context, name string) <-chan cluster.Leader {
	store := c.configStore(name)
	return backend.Observe(ctx, c.ctx, name, c.life.Go, func(ctx context.Context, publish func(cluster.Leader)) {
		leaserecord.Observe(ctx, store, c.timing(), publish)
	})
}

// configStore keeps a lease record as one config, over the HTTP open API
// (the SDK's config client reads through local snapshot files, which could
// show a stale record).
type configStore struct {
	c      *Coordinator
	base   string // http://host:port/<contextPath>/v1
	dataID string
}

func (c *Coordinator) configStore(name string) *configStore {
	return &configStore{c: c, base: c.apiBase(), dataID: c.electionDataID(name)}
}

// apiBase is the open API's base URL on the first server:
// http://host:port/<contextPath>/v1.
func (c *Coordinator) apiBase() string {
	path := strings.Trim(c.cfg.ContextPath, "/")
	if path == "" {
		path = "nacos"
	}
	s := c.servers[0]
	return "http://" + net.JoinHostPort(s.host, strconv.FormatUint(s.port, 10)) + "/" + path + "/v1"
}

func (s *configStore) params() url.Values {
	v := url.Values{"dataId": {s.dataID}, "group": {s.c.cfg.Group}}
	if ns := s.c.cfg.namespaceID(); ns != "" {
		v.Set("tenant", ns)
	}
	return v
}

// Get reads the record; its version is its content's MD5.
func (s *configStore) Get(ctx context.Context) (leaserecord.Record, string, error) {
	body, found, err := s.read(ctx)
	if err != nil || !found {
		return leaserecord.Record{}, "", err
	}
	var r leaserecord.Record
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		// Someone else's content: take it over as a free record.
		r = leaserecord.Record{}
	}
	return r, md5Hex([]byte(body)), nil
}

// read returns the config's content, if it exists.
func (s *configStore) read(ctx context.Context) (string, bool, error) {
	status, body, err := s.c.api(ctx, http.MethodGet, s.base+"/cs/configs", s.params(), nil)
	if err != nil {
		return "", false, err
	}
	switch status {
	case http.StatusOK:
		return body, true, nil
	case http.StatusNotFound:
		return "", false, nil
	default:
		return "", false, fmt.Errorf("reading config %s: %d %s", s.dataID, status, body)
	}
}

// Put publishes the record if the config's content still has MD5 version.
// An absent config is first created holding a free record and then taken
// from that by compare-and-swap: a create alone proves nothing, because
// the Nacos 2.x embedded store answers "true" to the loser of two
// concurrent creates too (it swallows the unique-key violation and reports
// the config that is there).
func (s *configStore) Put(ctx context.Context, r leaserecord.Record, version string) (string, error) {
	if version == "" {
		free, _ := json.Marshal(leaserecord.Record{})
		if _, err := s.publish(ctx, free, md5Hex(nil)); err != nil && !errors.Is(err, leaserecord.ErrConflict) {
			return "", err
		}
		version = md5Hex(free)
	}
	content, _ := json.Marshal(r)
	return s.publish(ctx, content, version)
}

// publish writes content if the config's content has MD5 casMd5 (or, for
// an absent config, creates it), and returns the new content's MD5.
func (s *configStore) publish(ctx context.Context, content []byte, casMd5 string) (string, error) {
	form := s.params()
	form.Set("content", string(content))
	form.Set("type", "json")
	status, body, err := s.c.api(ctx, http.MethodPost, s.base+"/cs/configs", form, http.Header{"casMd5": {casMd5}})
	if err != nil {
		return "", err
	}
	if status == http.StatusOK && strings.TrimSpace(body) == "true" {
		return md5Hex(content), nil
	}
	if status == http.StatusConflict || strings.Contains(strings.ToLower(body), "cas") || strings.Contains(body, "Duplicate") || strings.Contains(body, "duplicate") {
		return "", leaserecord.ErrConflict
	}
	if status == http.StatusForbidden {
		return "", &leaserecord.RefusedError{Err: fmt.Errorf("publishing config %s: %d %s (the user, cluster.nacos.username / SW_CLUSTER_NACOS_USERNAME, needs write permission on namespace %q)", s.dataID, status, body, s.c.cfg.namespaceID())}
	}
	return "", fmt.Errorf("publishing config %s: %d %s", s.dataID, status, body)
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// api makes one open-API call, logged in when cluster.nacos.username is
// set; a refused token is renewed once.
func (c *Coordinator) api(ctx context.Context, method, u string, params url.Values, header http.Header) (int, string, error) {
	for attempt := 0; ; attempt++ {
		q := url.Values{}
		for k, v := range params {
			q[k] = v
		}
		if c.cfg.Username != "" {
			token, err := c.token.get(ctx, c, attempt > 0)
			if err != nil {
				return 0, "", err
			}
			q.Set("accessToken", token)
		}
		var req *http.Request
		rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		if method == http.MethodGet {
			req, _ = http.NewRequestWithContext(rctx, method, u+"?"+q.Encode(), nil)
		} else {
			req, _ = http.NewRequestWithContext(rctx, method, u, strings.NewReader(q.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := c.http.Do(req)
		if err != nil {
			cancel()
			return 0, "", err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cancel()
		if resp.StatusCode == http.StatusForbidden && c.cfg.Username != "" && attempt == 0 {
			continue
		}
		return resp.StatusCode, string(body), nil
	}
}

// accessToken caches the token of the open API's login.
type accessToken struct {
	mu    sync.Mutex
	value string
}

func (t *accessToken) get(ctx context.Context, c *Coordinator, renew bool) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.value != "" && !renew {
		return t.value, nil
	}
	token, err := login(ctx, c.cfg, c.servers[0])
	if err != nil {
		return "", err
	}
	t.value = token
	return token, nil
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
func (c *Coordinator) RegisteredID() string { return c.selfID() }
