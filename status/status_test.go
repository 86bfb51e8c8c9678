package status_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herd-go/herd/inspect"
	"github.com/herd-go/herd/internal/testsupport/leakcheck"
	"github.com/herd-go/herd/internal/testsupport/testenv"
	"github.com/herd-go/herd/internal/testsupport/testnode"
	"github.com/herd-go/herd/status"
)

// serve starts the status handler of the first of three live nodes.
func serve(t *testing.T) (*httptest.Server, []*testnode.Node) {
	t.Helper()
	nodes := testnode.Cluster(t, 3, testnode.Options{Meta: map[string]string{"zone": "z1"}})
	in, err := inspect.New(inspect.Sources{Manager: nodes[0].Manager, Coordinator: nodes[0].Coord, Server: nodes[0].Server, Backend: "etcd"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(status.Handler(in))
	t.Cleanup(func() { srv.Close(); in.Close() })
	return srv, nodes
}

func get(t *testing.T, url string) (string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return string(body), resp.Header
}

func TestJSONEndpoints(t *testing.T) {
	leakcheck.Register(t)
	srv, nodes := serve(t)

	body, hdr := get(t, srv.URL+"/status/cluster/nodes")
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var sw struct {
		Nodes []struct {
			Host string `json:"host"`
			Port int    `json:"port"`
			Self bool   `json:"self"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(body), &sw); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if len(sw.Nodes) != 3 {
		t.Fatalf("SkyWalking shape: %d nodes, want 3: %s", len(sw.Nodes), body)
	}
	selves := 0
	for _, n := range sw.Nodes {
		if n.Self {
			selves++
			if n.Host != nodes[0].Self.Address.Host || n.Port != nodes[0].Self.Address.Port {
				t.Errorf("self is %s:%d, want %s", n.Host, n.Port, nodes[0].Self.Address)
			}
		}
	}
	if selves != 1 {
		t.Errorf("%d nodes marked self: %s", selves, body)
	}

	body, _ = get(t, srv.URL+"/status/herd")
	var r inspect.Report
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if r.Self.ID != nodes[0].Self.ID || r.Backend != "etcd" || len(r.View.Members) != 3 || !r.Membership.Registered || r.BackendStats == nil || r.Server == nil {
		t.Fatalf("report: %s", body)
	}
	for _, m := range r.View.Members {
		if m.Meta["zone"] != "z1" || (!m.Self && m.Client == nil) {
			t.Errorf("member %+v: want its metadata and, for a peer, its client's counters", m)
		}
	}

	// The page's links lead to the JSON endpoints.
	page, _ := get(t, srv.URL+"/status")
	base, _ := url.Parse(srv.URL + "/status/")
	links := regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(links) != 2 {
		t.Fatalf("the page has %d links, want 2", len(links))
	}
	for _, l := range links {
		ref, _ := url.Parse(l[1])
		if body, hdr := get(t, base.ResolveReference(ref).String()); hdr.Get("Content-Type") != "application/json" || !json.Valid([]byte(body)) {
			t.Errorf("link %s: not JSON", l[1])
		}
	}

	resp, err := http.Post(srv.URL+"/status/herd", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status/herd: %s, want 405", resp.Status)
	}
}

// TestPageInBrowser loads the page in a real headless Chromium against a
// live three-node cluster and checks the DOM it rendered: three member
// rows, self marked, a peer's health. A screenshot is kept in the test's
// artifact directory (go test -artifacts keeps it; scripts/test.sh does).
func TestPageInBrowser(t *testing.T) {
	chromium := testenv.Require(t, "HERD_CHROMIUM", "Chromium (Debian's chromium package)")
	leakcheck.Register(t)
	srv, nodes := serve(t)
	page := srv.URL + "/status" // redirects to /status/

	dom := browse(t, chromium, "--dump-dom", page)
	rows := regexp.MustCompile(`<tr class="member( self)?" data-id="([^"]+)"`).FindAllStringSubmatch(dom, -1)
	if len(rows) != 3 {
		t.Fatalf("the rendered page has %d member rows, want 3:\n%s", len(rows), dom)
	}
	seen := map[string]bool{}
	for _, row := range rows {
		seen[row[2]] = true
		if (row[1] != "") != (row[2] == nodes[0].Self.ID) {
			t.Errorf("row %s: self class %q", row[2], row[1])
		}
	}
	for _, n := range nodes {
		if !seen[n.Self.ID] {
			t.Errorf("member %s is not on the page", n.Self.ID)
		}
	}
	if !strings.Contains(dom, `<b id="member-count">3</b>`) || strings.Count(dom, `<span class="ok">ok</span>`) != 2 {
		t.Errorf("the page does not show 3 members with 2 healthy peers:\n%s", dom)
	}

	shot := filepath.Join(t.ArtifactDir(), "status-page.png")
	browse(t, chromium, "--screenshot="+shot, "--window-size=1280,800", page)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
	// A phone's width: the page scrolls sideways rather than break IDs.
	narrow := filepath.Join(t.ArtifactDir(), "status-page-480.png")
	browse(t, chromium, "--screenshot="+narrow, "--window-size=480,900", page)
	t.Logf("screenshot at 480 px: %s", narrow)
}

// browse runs headless Chromium once on a new profile. The flags keep it off
// the network except for the page (this machine's network is closed).
func browse(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromium, append(flags, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", chromium, args, err, stderr.String())
	}
	return string(out)
}
