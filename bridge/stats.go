package bridge

import "sync/atomic"

// Stats are the bridge's counters since start.
type Stats struct {
	Consumed        atomic.Int64
	Unmatched       atomic.Int64
	Started         atomic.Int64
	DuplicateStarts atomic.Int64
	Raised          atomic.Int64
	Controlled      atomic.Int64
	Parked          atomic.Int64
	DroppedFinished atomic.Int64
	DeadLettered    atomic.Int64
	EngineErrors    atomic.Int64
}

// StatsSnapshot is a copy of Stats for printing and tests.
type StatsSnapshot struct {
	Consumed, Unmatched, Started, DuplicateStarts, Raised, Controlled,
	Parked, DroppedFinished, DeadLettered, EngineErrors int64
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		Consumed: s.Consumed.Load(), Unmatched: s.Unmatched.Load(), Started: s.Started.Load(),
		DuplicateStarts: s.DuplicateStarts.Load(), Raised: s.Raised.Load(), Controlled: s.Controlled.Load(),
		Parked: s.Parked.Load(), DroppedFinished: s.DroppedFinished.Load(),
		DeadLettered: s.DeadLettered.Load(), EngineErrors: s.EngineErrors.Load(),
	}
}
