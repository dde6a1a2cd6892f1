package sagas

import (
	"context"
	"errors"
	"fmt"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/topics"
)

// Publisher is what saga activities need from the broker. Publish returns
// once the broker has stored the event; key keeps one instance's events in
// order on brokers that partition.
type Publisher interface {
	Publish(ctx context.Context, topic, key string, ev topics.CloudEvent) error
}

// ProgressFailureObserver is an optional capability of a Publisher, found
// by type assertion: it is told when a progress event could not be
// published. Progress is advisory, so such a failure never holds a saga up
// (a missing progress topic must not stop orders); a publisher that wants
// to count or log it implements this.
type ProgressFailureObserver interface {
	ProgressFailed(topic string, ev topics.CloudEvent, err error)
}

// PublishRequest is the input of the Publish activity.
type PublishRequest struct {
	Topic string            `json:"topic"`
	Key   string            `json:"key"`
	Event topics.CloudEvent `json:"event"`
	// Progress, when set, is published to ProgressTopic after Event: a
	// command step reports where the saga is in the same activity that
	// sends the command, so progress costs the engine no extra work.
	ProgressTopic string             `json:"progressTopic,omitempty"`
	Progress      *topics.CloudEvent `json:"progress,omitempty"`
}

// Activities are the side effects sagas perform (Registered names them).
type Activities struct {
	pub Publisher
}

// PublishActivity is the name Activities.Publish is registered under.
const PublishActivity = "sagabridge.publish"

// NewActivities builds the activities on a publisher.
func NewActivities(pub Publisher) (*Activities, error) {
	if pub == nil {
		return nil, errors.New("sagas: publisher is required")
	}
	return &Activities{pub: pub}, nil
}

// Publish sends one event (and the progress event riding with it). It runs
// at least once per call in the saga, so event ids are deterministic and
// consumers dedupe on them; on NATS the broker drops a re-publish of the
// same id within its duplicate window. It returns once the broker stored
// the event. A progress event that cannot be published is reported to a
// ProgressFailureObserver and otherwise dropped: the command went out.
func (a *Activities) Publish(ctx workflow.ActivityContext) (any, error) {
	var req PublishRequest
	if err := ctx.GetInput(&req); err != nil {
		return nil, fmt.Errorf("publish: decode input: %w", err)
	}
	if err := a.pub.Publish(ctx.Context(), req.Topic, req.Key, req.Event); err != nil {
		if req.Event.Type == ProgressType {
			a.progressFailed(req.Topic, req.Event, err)
			return nil, nil
		}
		return nil, fmt.Errorf("publish %s to %s: %w", req.Event.ID, req.Topic, err)
	}
	if req.Progress != nil {
		if err := a.pub.Publish(ctx.Context(), req.ProgressTopic, req.Key, *req.Progress); err != nil {
			a.progressFailed(req.ProgressTopic, *req.Progress, err)
		}
	}
	return nil, nil
}

func (a *Activities) progressFailed(topic string, ev topics.CloudEvent, err error) {
	if o, ok := a.pub.(ProgressFailureObserver); ok {
		o.ProgressFailed(topic, ev, err)
	}
}

// Registered lists the activities by the names sagas call them by.
func (a *Activities) Registered() map[string]workflow.Activity {
	return map[string]workflow.Activity{PublishActivity: a.Publish}
}
