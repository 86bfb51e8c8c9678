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
	status, body, err := c.get(ctx, "/v1/status/leader", "")
	if err != nil {
		return err
	}
	if status != 200 || strings.Trim(strings.TrimSpace(body), `"`) == "" {
		return errorf("no leader yet (%d %s)", status, body)
	}
	if c.management == "" {
		return nil
	}
	if status, body, err = c.get(ctx, "/v1/acl/token/self", c.management); err != nil {
		return err
	}
	if status != 200 {
		return errorf("the management token is not accepted yet (%d %s)", status, strings.TrimSpace(body))
	}
	return nil
}

func (c *Consul) get(ctx context.Context, path, token string) (status int, body string, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+c.HTTPAddr+path, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}
