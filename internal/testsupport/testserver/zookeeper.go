package testserver

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ZooKeeper is a standalone Apache ZooKeeper server with its data on disk.
// tickTime is 500ms, so session timeouts range from 1s to 10s.
type ZooKeeper struct {
	*Proc
	Addr string
}

// StartZooKeeper runs ZooKeeperServerMain from classpath (for Debian's
// package, "/usr/share/java/*").
func StartZooKeeper(t testing.TB, classpath string) *ZooKeeper {
	dir := t.TempDir()
	port := FreePort(t)
	cfg := fmt.Sprintf("tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=ruok,srvr\n",
		filepath.Join(dir, "data"), port)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	z := &ZooKeeper{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	z.Proc = newProc(t, "zookeeper", "java", []string{"-Xmx256m", "-cp", classpath, "org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(dir, "zoo.cfg")}, dir, z.ready)
	z.data = filepath.Join(dir, "data")
	z.Start()
	return z
}

// ready asks the four-letter "ruok" and wants "imok".
func (z *ZooKeeper) ready(ctx context.Context) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", z.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		return err
	}
	b, _ := io.ReadAll(c)
	if string(b) != "imok" {
		return errorf("ruok answered %q", b)
	}
	return nil
}
