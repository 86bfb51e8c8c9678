// Telling at once when nothing listens at a backend's addresses, so that
// start-up can say "connection refused" instead of waiting out an SDK's dial
// timeout.

package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// probeTimeout bounds one TCP connect. A refusal comes back in well under
// it; anything slower is left for the SDK's own timeout to judge.
const probeTimeout = time.Second

// AllRefused connects to every host:port in addrs at once and returns an
// error listing them when every one refused the connection. It returns nil
// when any accepted, or when any gave a less certain answer (a timeout, a
// DNS failure): then the caller's client decides, with its own timeout.
func AllRefused(ctx context.Context, addrs []string) error {
	if len(addrs) == 0 {
		return nil
	}
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			d := net.Dialer{Timeout: probeTimeout}
			conn, err := d.DialContext(ctx, "tcp", a)
			if err == nil {
				conn.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
	}
	return fmt.Errorf("connection refused at %v: nothing listens there", addrs)
}
