package bridge

import (
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/bridge/route"
)

// prepared is what the ordering key function worked out about a message:
// the subscriber needs the instance ID before it dispatches, and the
// handler then reuses the decoded event and the route decisions instead of
// decoding and routing a second time.
type prepared struct {
	ev        envelope.Event
	decodeErr error
	decisions []route.Decision
	routeErr  error
}

// preparedCache holds prepared messages between the key function and the
// handler. It is bounded: past max entries (messages keyed but never
// handled, say at shutdown) it stops adding, and the handler does the work
// itself, as it does for a message retried under a new copy.
type preparedCache struct {
	mu  sync.Mutex
	m   map[*message.Message]prepared
	max int
}

func newPreparedCache(max int) *preparedCache {
	return &preparedCache{m: map[*message.Message]prepared{}, max: max}
}

func (c *preparedCache) put(msg *message.Message, p prepared) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) < c.max {
		c.m[msg] = p
	}
}

// take returns and forgets what was prepared for msg.
func (c *preparedCache) take(msg *message.Message) (prepared, bool) {
	if c == nil {
		return prepared{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[msg]
	if ok {
		delete(c.m, msg)
	}
	return p, ok
}
