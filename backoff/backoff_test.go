package backoff

import (
	"context"
	"testing"
	"time"
)

func TestGrowsJittersAndCaps(t *testing.T) {
	b := New(10*time.Millisecond, 80*time.Millisecond)
	wantMax := []time.Duration{10, 20, 40, 80, 80, 80}
	for i, m := range wantMax {
		m *= time.Millisecond
		d := b.Next()
		if d < m/2 || d > m {
			t.Fatalf("attempt %d: delay %v outside [%v, %v]", i, d, m/2, m)
		}
	}
	b.Reset()
	if d := b.Next(); d > 10*time.Millisecond {
		t.Fatalf("after Reset: %v", d)
	}
}

func TestWaitStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if New(time.Hour, 0).Wait(ctx) {
		t.Fatal("Wait returned true on a cancelled context")
	}
}
