package gossip

// Crash stops the member as a crash would: no leave and no resignation,
// it simply stops answering; its goroutines end. Close then does nothing.
func (c *Coordinator) Crash() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.stopJoin()
	_ = c.ml.Shutdown()
	c.wg.Wait()
	c.view.Close()
}
