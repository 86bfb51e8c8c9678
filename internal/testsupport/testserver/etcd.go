package testserver

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// Etcd is an etcd server process with its data on disk, so it can be
// SIGKILLed and started again on the same data.
type Etcd struct {
	*Proc
	Endpoint string // host:port
}

// StartEtcd runs bin (an etcd binary) as a one-member cluster on loopback.
func StartEtcd(t testing.TB, bin string) *Etcd {
	dir := t.TempDir()
	client, peer := FreePort(t), FreePort(t)
	e := &Etcd{Endpoint: fmt.Sprintf("127.0.0.1:%d", client)}
	clientURL, peerURL := "http://"+e.Endpoint, fmt.Sprintf("http://127.0.0.1:%d", peer)
	e.Proc = newProc(t, "etcd", bin, []string{"--name=herd", "--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + clientURL, "--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=herd=" + peerURL, "--log-level=warn",
		// A SIGKILLed process loses nothing the kernel holds; skipping fsync
		// measures herd, not this machine's disk.
		"--unsafe-no-fsync"}, dir,
		func(ctx context.Context) error { return httpOK(ctx, nil, clientURL+"/health", "") })
	e.data = filepath.Join(dir, "etcd")
	e.Start()
	return e
}
