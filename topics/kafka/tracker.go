package kafka

import "sort"

// position is a partition and the offset of the last message to commit in
// it. kafka-go's CommitMessages commits Offset+1, the next one to read.
type position struct {
	Partition int
	Offset    int64
}

// ackTracker decides what may be committed: per partition, only the
// contiguous prefix of delivered messages that were all acked. An ack out of
// order (possible once messages of one partition are in flight together)
// waits until everything before it is acked; a nacked message simply stays
// unacked, so nothing after it is committed until its redelivery is acked.
//
// "Contiguous" follows delivery order, not offset arithmetic: compacted
// topics and transaction markers leave holes in offsets.
//
// The tracker is a plain data structure with no locking and no I/O so that
// its rules can be table-tested; the subscription serialises access.
type ackTracker struct {
	parts map[int]*partitionAcks
}

type partitionAcks struct {
	// pending are delivered offsets not yet folded into acked, in delivery order.
	pending []pendingOffset
	// acked is the highest offset of the acked prefix, -1 for none. It never
	// goes down.
	acked int64
	// committed is the highest offset committed successfully, -1 for none.
	committed int64
}

type pendingOffset struct {
	offset int64
	acked  bool
}

func newAckTracker() *ackTracker {
	return &ackTracker{parts: map[int]*partitionAcks{}}
}

func (t *ackTracker) part(partition int) *partitionAcks {
	p, ok := t.parts[partition]
	if !ok {
		p = &partitionAcks{acked: -1, committed: -1}
		t.parts[partition] = p
	}
	return p
}

// delivered records that the message at offset was handed out.
//
// An offset at or below one already pending is a rewind: after a rebalance
// the group restarted the partition from its committed offset, so the
// pending entries from there on will be delivered again and are dropped.
// acked is kept: those messages were processed, committing them is still
// right, and it must not move backwards.
func (t *ackTracker) delivered(partition int, offset int64) {
	p := t.part(partition)
	for n := len(p.pending); n > 0 && p.pending[n-1].offset >= offset; n = len(p.pending) {
		p.pending = p.pending[:n-1]
	}
	p.pending = append(p.pending, pendingOffset{offset: offset})
}

// ack marks the message at offset acked and folds the acked prefix. It
// returns false for an offset that is not pending (never delivered, or
// dropped by a rewind); such an ack changes nothing.
func (t *ackTracker) ack(partition int, offset int64) bool {
	p, ok := t.parts[partition]
	if !ok {
		return false
	}
	found := false
	for i := range p.pending {
		if p.pending[i].offset == offset {
			p.pending[i].acked = true
			found = true
			break
		}
	}
	if !found {
		return false
	}
	n := 0
	for n < len(p.pending) && p.pending[n].acked {
		if p.pending[n].offset > p.acked {
			p.acked = p.pending[n].offset
		}
		n++
	}
	p.pending = append(p.pending[:0], p.pending[n:]...)
	return true
}

// committable returns, sorted by partition, the positions whose acked prefix
// is ahead of what was committed.
func (t *ackTracker) committable() []position {
	var out []position
	for id, p := range t.parts {
		if p.acked > p.committed {
			out = append(out, position{Partition: id, Offset: p.acked})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out
}

// committed records positions that were committed successfully.
func (t *ackTracker) committed(ps []position) {
	for _, pos := range ps {
		p := t.part(pos.Partition)
		if pos.Offset > p.committed {
			p.committed = pos.Offset
		}
	}
}
