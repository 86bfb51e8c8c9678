package remote

import (
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
)

func TestClientOptionDefaults(t *testing.T) {
	d := newClientOptions(nil)
	if d.QueueSize != 4096 || d.MaxBatchMessages != 256 || d.MaxBatchBytes != 1<<20 || d.MaxMessageBytes != 4<<20-64<<10 ||
		d.FlushDelay != 2*time.Millisecond || d.CloseTimeout != 5*time.Second ||
		d.Backoff != (cluster.Backoff{Initial: 50 * time.Millisecond, Max: 5 * time.Second}) || d.Logger == nil || len(d.DialOptions) != 1 {
		t.Fatalf("defaults %+v", d)
	}
	if o := newClientOptions([]ClientOption{WithFlushDelay(-1)}); o.FlushDelay != 0 {
		t.Errorf("a negative FlushDelay means no linger, got %s", o.FlushDelay)
	}
	if o := newClientOptions([]ClientOption{WithFlushDelay(time.Second), WithReconnectBackoff(cluster.Backoff{Max: time.Minute}), nil}); o.FlushDelay != time.Second || o.Backoff != (cluster.Backoff{Initial: 50 * time.Millisecond, Max: time.Minute}) {
		t.Errorf("set values not kept: %s %+v", o.FlushDelay, o.Backoff)
	}
}
