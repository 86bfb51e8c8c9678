package testserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Nacos is a Nacos-compatible server, r-nacos (the Rust crate registry: rnacos), with its
// data on disk. Nacos 2.x clients use the HTTP port and gRPC on HTTP+1000.
type Nacos struct {
	*Proc
	Addr string // host:port of the HTTP port
}

// StartNacos runs bin (an rnacos binary) on free loopback ports.
func StartNacos(t testing.TB, bin string) *Nacos {
	dir := t.TempDir()
	var http int
	for { // gRPC must be free at HTTP+1000
		http = FreePort(t)
		if http+1000 < 65536 && portFree(http+1000) {
			break
		}
	}
	n := &Nacos{Addr: fmt.Sprintf("127.0.0.1:%d", http)}
	wrapper := filepath.Join(dir, "run.sh")
	script := fmt.Sprintf("#!/bin/sh\nexport RNACOS_HTTP_PORT=%d RNACOS_GRPC_PORT=%d RNACOS_HTTP_CONSOLE_PORT=%d RNACOS_DATA_DIR=%s\nexec %s\n",
		http, http+1000, FreePort(t), filepath.Join(dir, "data"), bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	n.Proc = newProc(t, "rnacos", "/bin/sh", []string{wrapper}, dir, func(ctx context.Context) error {
		if err := httpOK(ctx, nil, "http://"+n.Addr+"/nacos/v1/ns/instance/list?serviceName=herd-probe", ""); err != nil {
			return err
		}
		return dialOK("127.0.0.1:" + strconv.Itoa(http+1000))
	})
	n.Start()
	return n
}

func portFree(p int) bool {
	return dialOK("127.0.0.1:"+strconv.Itoa(p)) != nil
}
