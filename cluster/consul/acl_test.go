package consul_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/consul"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/testenv"
	"github.com/herd-go/herd/internal/testsupport/testserver"
)

// herd on a Consul agent with ACLs on and default_policy deny, given a
// token that may only register its own service and read the catalog: it
// registers and sees its peers. The same token cannot register another
// service, and a wrong token fails at start; both errors name the setting.
func TestACLDefaultDeny(t *testing.T) {
	bin := testenv.Require(t, "HERD_CONSUL_BIN", "a consul binary, to start an agent with ACLs on")
	const management = "b1f3a4c2-6d8e-4f70-9a1b-2c3d4e5f6a7b"
	srv := testserver.StartConsulACL(t, bin, management)
	cfg := testConfig(t, srv.HTTPAddr)

	root := rawClient(t, srv.HTTPAddr)
	wq := &api.WriteOptions{Token: management}
	policy, _, err := root.ACL().PolicyCreate(&api.ACLPolicy{Name: "herd", Rules: fmt.Sprintf(`
service %q { policy = "write" }
service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
`, cfg.ServiceName)}, wq)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := root.ACL().TokenCreate(&api.ACLToken{Description: "herd", Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, wq)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ACLToken = token.SecretID

	a, b := newCoordinator(t, cfg), newCoordinator(t, cfg)
	defer a.Close()
	defer b.Close()
	na, nb := clusterwait.NewNode(), clusterwait.NewNode()
	if err := a.RegisterRemote(context.Background(), na); err != nil {
		t.Fatalf("registering with the limited token: %v", err)
	}
	if err := b.RegisterRemote(context.Background(), nb); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitFor(t, a.Watch(context.Background()), 15*time.Second, "both nodes", func(ns []cluster.Node) bool {
		return clusterwait.Has(ns, na.ID) && clusterwait.Has(ns, nb.ID)
	})

	other := cfg
	other.ServiceName = "not-herds"
	c := newCoordinator(t, other)
	defer c.Close()
	err = c.RegisterRemote(context.Background(), clusterwait.NewNode())
	if err == nil || !strings.Contains(err.Error(), "SW_CLUSTER_CONSUL_ACLTOKEN") || !strings.Contains(err.Error(), "service:write") {
		t.Errorf("registering a service the token may not write: %v; want an error naming the token setting and service:write", err)
	}

	for name, tok := range map[string]string{"wrong token": "00000000-1111-2222-3333-444444444444"} {
		bad := cfg
		bad.ACLToken = tok
		c, err := consul.New(context.Background(), bad, cluster.WithLogger(logger))
		if err == nil {
			c.Close()
			t.Errorf("%s: New succeeded", name)
			continue
		}
		var se api.StatusError
		if !strings.Contains(err.Error(), "SW_CLUSTER_CONSUL_ACLTOKEN") || !errors.As(err, &se) || se.Code != 403 {
			t.Errorf("%s: %v; want a 403 naming SW_CLUSTER_CONSUL_ACLTOKEN", name, err)
		}
	}
}
