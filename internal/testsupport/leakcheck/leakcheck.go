// Package leakcheck fails a test that leaves goroutines behind. It wraps
// goleak with a longer settling time: gRPC and HTTP connections that were
// closed wind their goroutines down asynchronously.
package leakcheck

import (
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Register takes the goroutines running now as the baseline and, when the
// test ends (after every cleanup registered later), fails it if others
// remain for more than 10 seconds. Call it first in a test.
func Register(t testing.TB, opts ...goleak.Option) { RegisterWith(t, nil, opts...) }

// RegisterWith is Register with a settle function called before each look,
// for goroutines that end only when asked, such as HTTP connections that
// went idle after their last close (client-go shares transports).
func RegisterWith(t testing.TB, settle func(), opts ...goleak.Option) {
	opts = append([]goleak.Option{goleak.IgnoreCurrent()}, opts...)
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if settle != nil {
				settle()
			}
			err := goleak.Find(opts...)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Error(err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// Settle waits (up to 5s) until the number of goroutines stops changing, so
// that a server started in TestMain has finished starting its own before
// tests take their baselines.
func Settle() {
	prev := -1
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n := runtime.NumGoroutine()
		if n == prev {
			return
		}
		prev = n
		time.Sleep(300 * time.Millisecond)
	}
}
