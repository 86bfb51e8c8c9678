package gossip

import (
	"errors"
	"log/slog"
	"time"
)

// Crash stops the member as a crash would: no leave and no resignation,
// it simply stops answering; its goroutines end. Close then does nothing.
func (c *Coordinator) Crash() {
	c.down.Store(true) // nothing more is gossiped, and nobody is told of the leave
	c.stopWaiting()
	c.stopJoin()
	_ = c.ml.Shutdown()
	_ = c.Close() // ends the goroutines; down, it resigns and leaves nowhere
}

// DropUpdates makes memberlist miss this member's next n updates of its
// entry, as it does when a refutation takes an update's incarnation first.
func (c *Coordinator) DropUpdates(n int) {
	c.announcing.Lock()
	defer c.announcing.Unlock()
	update := c.updateNode
	c.updateNode = func(timeout time.Duration) error {
		if n > 0 {
			n--
			return errors.New("dropped by the test")
		}
		return update(timeout)
	}
}

// NumMembers is how many members this one counts as alive, itself included.
func (c *Coordinator) NumMembers() int { return c.ml.NumMembers() }

// LogLine passes one memberlist log line through the coordinator's writer.
func LogLine(l *slog.Logger, line string) { _, _ = logWriter{l}.Write([]byte(line)) }
