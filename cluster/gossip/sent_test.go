package gossip_test

import (
	"strings"
	"sync/atomic"

	metrics "github.com/hashicorp/go-metrics/compat"
)

// sentCounter adds up the bytes memberlist reports sending, UDP and TCP,
// through the process-wide metrics sink that memberlist writes to.
type sentCounter struct {
	metrics.BlackholeSink
	n atomic.Int64
}

func (s *sentCounter) IncrCounterWithLabels(key []string, val float32, _ []metrics.Label) {
	if k := strings.Join(key, "."); k == "memberlist.udp.sent" || k == "memberlist.tcp.sent" {
		s.n.Add(int64(val))
	}
}

func (s *sentCounter) total() int64 { return s.n.Load() }

// countSent installs a sentCounter as the global sink; for a child process only.
func countSent() *sentCounter {
	s := &sentCounter{}
	cfg := metrics.DefaultConfig("")
	cfg.EnableRuntimeMetrics, cfg.EnableHostname = false, false
	_, _ = metrics.NewGlobal(cfg, s)
	return s
}
