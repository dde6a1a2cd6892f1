package sagas

import (
	"context"
	"errors"
	"fmt"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas/progress"
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
	// Topic is where Event goes; empty means the worker's default topic
	// for the event: DefaultTopics.Progress for a progress event,
	// DefaultTopics.Outcomes for anything else (an outcome).
	Topic string            `json:"topic"`
	Key   string            `json:"key"`
	Event topics.CloudEvent `json:"event"`
	// Progress, when set, is published to ProgressTopic after Event: a
	// command step reports where the saga is in the same activity that
	// sends the command, so progress costs the engine no extra work.
	ProgressTopic string             `json:"progressTopic,omitempty"`
	Progress      *topics.CloudEvent `json:"progress,omitempty"`
	// Options, when set, shape the message (a step's Message): the
	// publisher must be a MessagePublisher.
	Options *MessageOptions `json:"options,omitempty"`
}

// DefaultTopics are where a saga's outcome and progress events go when the
// saga names no topic of its own. The worker's configuration sets them
// (bridge.yaml's outcomes block); zero values mean topics.Outcomes and
// progress.DefaultTopic.
type DefaultTopics struct {
	Outcomes string
	Progress string
}

func (d DefaultTopics) withDefaults() DefaultTopics {
	if d.Outcomes == "" {
		d.Outcomes = topics.Outcomes
	}
	if d.Progress == "" {
		d.Progress = progress.DefaultTopic
	}
	return d
}

// Activities are the side effects sagas perform (Registered names them).
type Activities struct {
	pub    Publisher
	topics DefaultTopics
}

// PublishActivity is the name Activities.Publish is registered under.
const PublishActivity = "sagabridge.publish"

// NewActivities builds the activities on a publisher; defaults are the
// topics of sagas that name none.
func NewActivities(pub Publisher, defaults DefaultTopics) (*Activities, error) {
	if pub == nil {
		return nil, errors.New("sagas: publisher is required")
	}
	return &Activities{pub: pub, topics: defaults.withDefaults()}, nil
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
	if req.Topic == "" {
		req.Topic = a.topics.Outcomes
		if req.Event.Type == progress.Type {
			req.Topic = a.topics.Progress
		}
	}
	if req.ProgressTopic == "" {
		req.ProgressTopic = a.topics.Progress
	}
	if err := a.send(ctx.Context(), req); err != nil {
		if req.Event.Type == progress.Type {
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

func (a *Activities) send(ctx context.Context, req PublishRequest) error {
	if req.Options == nil {
		return a.pub.Publish(ctx, req.Topic, req.Key, req.Event)
	}
	mp, ok := a.pub.(MessagePublisher)
	if !ok {
		return fmt.Errorf("the publisher (%T) cannot send plain messages or headers: %w", a.pub, errors.ErrUnsupported)
	}
	return mp.PublishMessage(ctx, req.Topic, req.Key, req.Event, *req.Options)
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
