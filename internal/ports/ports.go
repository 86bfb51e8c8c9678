// Package ports picks loopback TCP ports for servers that tests (and the
// demo's embedded etcd) start and may restart on the same port.
//
// A port the kernel hands out for ":0" comes from the ephemeral range, the
// same range it draws the local ports of outgoing connections from. A
// server stopped for a restart test leaves its port free, and any client
// connection made meanwhile may take it as its local port and keep it: the
// server then cannot bind again. CI saw a Nacos server's restart fail that
// way, three times running. So Free picks below the ephemeral range, where
// no outgoing connection lands.
package ports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
)

// lowest is the lowest port Free returns; the room below the ephemeral
// range starts here (and leaves 1000 below for servers that need P-1000).
const lowest = 11000

// Free returns a loopback TCP port below the ephemeral range that was free
// a moment ago.
func Free() (int, error) {
	high := ephemeralLow() - 1002 // room for servers that also use P+1001
	if high <= lowest {
		return 0, fmt.Errorf("ports: the ephemeral range starts at %d, leaving no room below it", high+1002)
	}
	for range 1000 {
		p := lowest + rand.IntN(high-lowest)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("ports: no free port below the ephemeral range after 1000 tries")
}

// ephemeralLow is the start of the kernel's ephemeral port range; Linux's
// default when it cannot be read.
func ephemeralLow() int {
	low := 32768
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, b int
		if n, _ := fmt.Sscan(string(data), &a, &b); n == 2 && a > 0 {
			low = a
		}
	}
	return low
}
