package nacos_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/nacos"
	"github.com/herd-go/herd/internal/testsupport/clusterwait"
	"github.com/herd-go/herd/internal/testsupport/testenv"
	"github.com/herd-go/herd/internal/testsupport/testserver"
)

// nacosAPI calls the server's open API as an operator would, and fails the
// test unless it answers 200.
func nacosAPI(t *testing.T, addr, path string, form url.Values) []byte {
	t.Helper()
	resp, err := http.PostForm("http://"+addr+"/nacos"+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

// herd on the Alibaba Nacos server with authentication on, as a user whose
// role may read and write the public namespace: it registers and sees its
// peers. Wrong or missing credentials fail at start, naming the settings.
func TestAuthentication(t *testing.T) {
	if raceDetector {
		t.Skip("nacos-sdk-go v2.3.5 races with itself when its connection comes up; scripts/test.sh runs this without -race")
	}
	dist := testenv.Require(t, "HERD_NACOS_SERVER", "the Alibaba Nacos server's distribution, to start one with authentication on")
	srv := testserver.StartNacosServerAuth(t, dist)

	nacosAPI(t, srv.Addr, "/v1/auth/users/admin", url.Values{"password": {"admin-secret"}})
	var login struct {
		AccessToken string `json:"accessToken"`
	}
	// Users reach the server's auth cache by its periodic reload (15 s), so
	// a new user's first logins may not find it yet.
	loginAs := func(user, password string) {
		clusterwait.WaitUntil(t, 45*time.Second, user+"'s login", func() bool {
			resp, err := http.PostForm("http://"+srv.Addr+"/nacos/v1/auth/login", url.Values{"username": {user}, "password": {password}})
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&login) == nil && login.AccessToken != ""
		})
	}
	loginAs("nacos", "admin-secret")
	admin := func(path string, form url.Values) {
		form.Set("accessToken", login.AccessToken)
		nacosAPI(t, srv.Addr, path, form)
	}
	admin("/v1/auth/users", url.Values{"username": {"herd"}, "password": {"herd-secret"}})
	admin("/v1/auth/roles", url.Values{"role": {"herd_role"}, "username": {"herd"}})
	// The public namespace's resources are named without its ID.
	admin("/v1/auth/permissions", url.Values{"role": {"herd_role"}, "resource": {":*:*"}, "action": {"rw"}})

	adminToken := login.AccessToken
	loginAs("herd", "herd-secret")
	login.AccessToken = adminToken
	cfg := testConfig(t, srv.Addr)
	cfg.Username, cfg.Password = "herd", "herd-secret"
	var a, b *nacos.Coordinator
	clusterwait.WaitUntil(t, 30*time.Second, "the herd user authorized", func() bool {
		c, err := nacos.New(context.Background(), cfg, cluster.WithLogger(quiet))
		if err != nil {
			return false
		}
		a = c
		return true
	})
	defer a.Close()
	b = newCoordinator(t, cfg)
	defer b.Close()
	na, nb := clusterwait.NewNode(), clusterwait.NewNode()
	var regErr error
	clusterwait.WaitUntil(t, 30*time.Second, "a registration as the herd user", func() bool {
		regErr = a.RegisterRemote(context.Background(), na)
		return regErr == nil
	})
	if err := b.RegisterRemote(context.Background(), nb); err != nil {
		t.Fatal(err)
	}
	clusterwait.WaitFor(t, a.Watch(context.Background()), 10*time.Second, "both nodes", func(ns []cluster.Node) bool {
		return clusterwait.Has(ns, na.ID) && clusterwait.Has(ns, nb.ID)
	})

	bad := cfg
	bad.Password = "wrong"
	if c, err := nacos.New(context.Background(), bad, cluster.WithLogger(quiet)); err == nil {
		c.Close()
		t.Error("New with a wrong password succeeded")
	} else if !strings.Contains(err.Error(), "SW_CLUSTER_NACOS_USERNAME") || !strings.Contains(err.Error(), "SW_CLUSTER_NACOS_PASSWORD") {
		t.Errorf("New with a wrong password: %v; want an error naming SW_CLUSTER_NACOS_USERNAME and SW_CLUSTER_NACOS_PASSWORD", err)
	}
	// Without credentials nothing can be checked before registering (the
	// SDK answers refused queries as empty): the registration fails, and
	// says which settings to set.
	anonymous := cfg
	anonymous.Username, anonymous.Password = "", ""
	c := newCoordinator(t, anonymous)
	defer c.Close()
	if err := c.RegisterRemote(context.Background(), clusterwait.NewNode()); err == nil || !strings.Contains(err.Error(), "SW_CLUSTER_NACOS_USERNAME") {
		t.Errorf("registering without credentials: %v; want an error naming SW_CLUSTER_NACOS_USERNAME", err)
	}
}
