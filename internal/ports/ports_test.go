package ports

import (
	"fmt"
	"net"
	"testing"
)

func TestFreeIsBelowTheEphemeralRangeAndFree(t *testing.T) {
	low := ephemeralLow()
	for range 50 {
		p, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if p < lowest || p+1001 >= low {
			t.Fatalf("port %d: want %d ≤ p and p+1001 < %d (the ephemeral range)", p, lowest, low)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
}
