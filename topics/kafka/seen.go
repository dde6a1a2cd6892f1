package kafka

import "sync"

// seen remembers, by partition and offset, the records a subscription
// holds (fetched, not yet settled) and the last ones it acked. After a
// pause longer than the session timeout (SIGSTOP, say) the group takes the
// partitions away and gives them back from the last commit, and the reader
// fetches again records the subscription still holds or has handled;
// handling them again would repeat raises, out of their order.
type seen struct {
	mu    sync.Mutex
	held  map[position]struct{}
	done  map[position]struct{}
	order []position // done, oldest first
}

// seenAckedMax bounds how many acked records are remembered: more than a
// subscription acks between two commits.
const seenAckedMax = 1 << 16

type seenVerdict int

const (
	seenNew seenVerdict = iota
	seenHeld
	seenAcked
)

func newSeen() *seen {
	return &seen{held: map[position]struct{}{}, done: map[position]struct{}{}}
}

// admit says whether the record at p is new (and holds it from now on),
// held, or acked.
func (s *seen) admit(p position) seenVerdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.held[p]; ok {
		return seenHeld
	}
	if _, ok := s.done[p]; ok {
		return seenAcked
	}
	s.held[p] = struct{}{}
	return seenNew
}

// release forgets p: not handled, its next fetch is new.
func (s *seen) release(p position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, p)
}

// acked moves p from held to acked.
func (s *seen) acked(p position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, p)
	if _, ok := s.done[p]; ok {
		return
	}
	s.done[p] = struct{}{}
	s.order = append(s.order, p)
	if len(s.order) > seenAckedMax {
		delete(s.done, s.order[0])
		s.order = s.order[1:]
	}
}
