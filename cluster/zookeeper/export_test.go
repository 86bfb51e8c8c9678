package zookeeper

// Reads counts the member znodes the coordinator has read.
func (c *Coordinator) Reads() uint64 { return c.reads.Load() }
