package bridge

import (
	"context"
	"encoding/json"
	"fmt"

	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

// progressSink is what the bridge feeds with the progress and outcome
// events it sees (the running sagas behind the oldest-running gauge).
type progressSink interface {
	Apply(ev topics.CloudEvent) (progress.Progress, error)
}

// follower is a broker that hands every replica every message published
// on some topics, outside the worker's consumer group (on NATS a core
// subscription, on Kafka a throwaway group from the latest offset), until
// ctx ends.
type follower interface {
	Follow(ctx context.Context, topics []string, apply func(payload []byte)) error
}

// feedProgress keeps the sink current until ctx ends. Progress is
// advisory: what is missed while disconnected is not replayed, and the
// next event of the instance (or its outcome) corrects the sink.
func (b *Bridge) feedProgress(ctx context.Context, f follower, sink progressSink) error {
	apply := func(payload []byte) {
		var ev topics.CloudEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return
		}
		_, _ = sink.Apply(ev) // not every outcome-topic event is progress
	}
	if err := f.Follow(ctx, b.sagaTopics, apply); err != nil {
		return fmt.Errorf("progress: %w", err)
	}
	return nil
}

// runProgress feeds the sink beside the router; a failure costs only the
// oldest-running gauge, so it is logged, not fatal.
func (b *Bridge) runProgress(ctx context.Context, f follower, sink progressSink) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.feedProgress(ctx, f, sink); err != nil {
			b.log.Warn("progress events not followed; the oldest running saga gauge stays empty", zap.Error(err))
		}
	}()
	return func() { cancel(); <-done }
}
