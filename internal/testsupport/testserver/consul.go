package testserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Consul is a single-server Consul agent with its data on disk, so a killed
// agent comes back with its catalog.
type Consul struct {
	*Proc
	HTTPAddr string
	// management, when ACLs are on: ready waits until it is accepted.
	management string
}

// StartConsul runs bin (a consul binary) as a one-server cluster on loopback.
func StartConsul(t testing.TB, bin string) *Consul { return startConsul(t, bin, "", "") }

// StartConsulACL runs bin with ACLs on and default_policy deny; management
// is both the initial management token and the agent's own token.
func StartConsulACL(t testing.TB, bin, management string) *Consul {
	return startConsul(t, bin, fmt.Sprintf(`acl {
  enabled = true
  default_policy = "deny"
  enable_token_persistence = true
  tokens {
    initial_management = %q
    agent = %q
  }
}
`, management, management), management)
}

func startConsul(t testing.TB, bin, hcl, management string) *Consul {
	dir := t.TempDir()
	http := FreePort(t)
	args := []string{"agent", "-server", "-bootstrap-expect=1", "-data-dir=" + dir + "/data",
		"-node=herd-test", "-bind=127.0.0.1", "-advertise=127.0.0.1", "-client=127.0.0.1",
		"-http-port=" + strconv.Itoa(http), "-dns-port=-1", "-grpc-port=-1", "-grpc-tls-port=-1",
		"-serf-lan-port=" + strconv.Itoa(FreePort(t)), "-serf-wan-port=" + strconv.Itoa(FreePort(t)),
		"-server-port=" + strconv.Itoa(FreePort(t)), "-log-level=warn"}
	if hcl != "" {
		if err := os.WriteFile(dir+"/extra.hcl", []byte(hcl), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-config-file="+dir+"/extra.hcl")
	}
	c := &Consul{HTTPAddr: fmt.Sprintf("127.0.0.1:%d", http), management: management}
	c.Proc = newProc(t, "consul", bin, args, dir, c.ready)
	c.data = dir + "/data"
	c.Start()
	return c
}

// ready waits for a leader, which the catalog needs, and with ACLs on for
// the management token to be accepted: the leader reports itself before
// it has bootstrapped the ACL system, and until then every request that
// needs a token fails with 403 "ACL system must be bootstrapped".
func (c *Consul) ready(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+c.HTTPAddr+"/v1/status/leader", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.Trim(strings.TrimSpace(string(body)), `"`) == "" {
		return errorf("no leader yet (%d %s)", resp.StatusCode, body)
	}
	if c.management == "" {
		return nil
	}
	return httpOK(ctx, nil, "http://"+c.HTTPAddr+"/v1/acl/token/self", c.management)
}
