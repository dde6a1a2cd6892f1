package bridge

import "sync"

// counts keeps a number per unsettled message (deliveries for brokers that
// do not count them, engine refusals), keyed by the message's identity on
// the broker (dlq.Origin), and forgets it when the message is settled. It
// holds at most max messages, forgetting the oldest first: a message
// another replica settled is never forgotten here otherwise. A restart or
// an eviction forgets a count; that only means a few more retries.
type counts struct {
	mu    sync.Mutex
	max   int
	n     map[string]int
	order []string // keys in the order they were first counted
}

// defaultCountsMax bounds each counts map: a few times what a worker holds
// unsettled at once.
const defaultCountsMax = 1 << 16

func (c *counts) next(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	if _, ok := c.n[key]; !ok {
		limit := c.max
		if limit <= 0 {
			limit = defaultCountsMax
		}
		for len(c.n) >= limit && len(c.order) > 0 {
			delete(c.n, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, key)
	}
	c.n[key]++
	return c.n[key]
}

func (c *counts) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.n[key]; !ok {
		return
	}
	delete(c.n, key)
	// Forgotten keys leave the order list lazily; compact it once it is
	// mostly stale, so it stays proportional to the map.
	if len(c.order) > 2*len(c.n)+64 {
		live := c.order[:0]
		for _, k := range c.order {
			if _, ok := c.n[k]; ok {
				live = append(live, k)
			}
		}
		c.order = live
	}
}

func (c *counts) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.n)
}
