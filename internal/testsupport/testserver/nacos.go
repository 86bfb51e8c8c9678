package testserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Nacos is a Nacos server: the Alibaba server (StartNacosServer) or r-nacos,
// a compatible reimplementation (StartNacos). Nacos 2.x clients use the HTTP
// port and gRPC on HTTP+1000. Ephemeral instances, which herd registers,
// live in the server's memory: a restart always comes back empty of them.
type Nacos struct {
	*Proc
	Addr string // host:port of the HTTP port
}

// StartNacosServer runs the Alibaba Nacos server, standalone, from dist (a
// distribution folder holding target/nacos-server.jar and conf/; see
// scripts/backends.sh). It takes 15-25 s to start.
func StartNacosServer(t testing.TB, dist string) *Nacos { return startNacosServer(t, dist, false) }

// StartNacosServerAuth runs the Alibaba Nacos server with authentication on
// (its own nacos user system). Its admin password is not set: the test sets
// it, as an operator does on a new server.
func StartNacosServerAuth(t testing.TB, dist string) *Nacos { return startNacosServer(t, dist, true) }

func startNacosServer(t testing.TB, dist string, auth bool) *Nacos {
	home := t.TempDir()
	if out, err := exec.Command("cp", "-r", filepath.Join(dist, "conf"), filepath.Join(home, "conf")).CombinedOutput(); err != nil {
		t.Fatalf("copying the Nacos server's conf: %v: %s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(home, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	// HTTP on P; client gRPC on P+1000, cluster gRPC on P+1001 and JRaft on
	// P-1000 must be free too.
	http := nacosPort(t, -1000, 1000, 1001)
	n := &Nacos{Addr: fmt.Sprintf("127.0.0.1:%d", http)}
	args := []string{"-Xms256m", "-Xmx512m", "-Xmn128m", "-Dnacos.standalone=true", "-Dnacos.home=" + home,
		"-Dnacos.inetutils.ip-address=127.0.0.1", "-Dserver.address=127.0.0.1",
		"-jar", filepath.Join(dist, "target", "nacos-server.jar"),
		"--spring.config.additional-location=file:" + home + "/conf/",
		"--logging.config=" + home + "/conf/nacos-logback.xml", "--server.port=" + strconv.Itoa(http)}
	ready := "/nacos/v1/ns/operator/metrics"
	if auth {
		args = append(args, "--nacos.core.auth.enabled=true",
			"--nacos.core.auth.server.identity.key=herd-test", "--nacos.core.auth.server.identity.value=herd-test",
			// base64 of 32 bytes, the token signing key's minimum
			"--nacos.core.auth.plugin.nacos.token.secret.key=aGVyZC10ZXN0LXNpZ25pbmcta2V5LW9mLTMyLWJ5dGVzISE=")
		ready = "/nacos/v1/console/health/readiness" // open with auth on
	}
	n.Proc = newProc(t, "nacos-server", "java", args, home, n.answers(ready, http))
	n.data = filepath.Join(home, "data")
	n.logs = filepath.Join(home, "logs", "*.log")
	n.Start()
	return n
}

// StartNacos runs bin (an rnacos binary) on free loopback ports.
func StartNacos(t testing.TB, bin string) *Nacos {
	dir := t.TempDir()
	http := nacosPort(t, 1000)
	n := &Nacos{Addr: fmt.Sprintf("127.0.0.1:%d", http)}
	wrapper := filepath.Join(dir, "run.sh")
	script := fmt.Sprintf("#!/bin/sh\nexport RNACOS_HTTP_PORT=%d RNACOS_GRPC_PORT=%d RNACOS_HTTP_CONSOLE_PORT=%d RNACOS_DATA_DIR=%s\nexec %s\n",
		http, http+1000, FreePort(t), filepath.Join(dir, "data"), bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	n.Proc = newProc(t, "rnacos", "/bin/sh", []string{wrapper}, dir, n.answers("/nacos/v1/ns/instance/list?serviceName=herd-probe", http))
	n.data = filepath.Join(dir, "data")
	n.Start()
	return n
}

// answers is a server's readiness: path answers on the HTTP port, and the
// client gRPC port (HTTP+1000) takes connections.
func (n *Nacos) answers(path string, http int) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := httpOK(ctx, nil, "http://"+n.Addr+path, ""); err != nil {
			return err
		}
		return dialOK("127.0.0.1:" + strconv.Itoa(http+1000))
	}
}

// nacosPort returns a free port P such that P+offset is free and in range
// for every offset.
func nacosPort(t testing.TB, offsets ...int) int {
next:
	for {
		p := FreePort(t)
		for _, o := range offsets {
			if p+o < 1024 || p+o > 65535 || !portFree(p+o) {
				continue next
			}
		}
		return p
	}
}

func portFree(p int) bool {
	return dialOK("127.0.0.1:"+strconv.Itoa(p)) != nil
}
