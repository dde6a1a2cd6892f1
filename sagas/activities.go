package sagas

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"

	"github.com/dapr/go-sdk/workflow"

	"github.com/sagabridge/sagabridge/topics"
)

// Publisher is what saga activities need from the broker. Publish returns
// once the broker has stored the event; key keeps one instance's events in
// order on brokers that partition.
type Publisher interface {
	Publish(ctx context.Context, topic, key string, ev topics.CloudEvent) error
}

// PublishRequest is the input of the Publish activity.
type PublishRequest struct {
	Topic string            `json:"topic"`
	Key   string            `json:"key"`
	Event topics.CloudEvent `json:"event"`
}

// Activities are the side effects sagas perform. They are registered as
// method values, so go-sdk names them "<Method>-fm"; PublishActivity is that
// name and NewActivities checks it.
type Activities struct {
	pub Publisher
}

// PublishActivity is the registered name of Activities.Publish.
const PublishActivity = "Publish-fm"

// NewActivities builds the activities on a publisher.
func NewActivities(pub Publisher) (*Activities, error) {
	if pub == nil {
		return nil, errors.New("sagas: publisher is required")
	}
	a := &Activities{pub: pub}
	if got := FuncName(a.Publish); got != PublishActivity {
		return nil, fmt.Errorf("sagas: activity registers as %q, runtime calls %q", got, PublishActivity)
	}
	return a, nil
}

// Publish sends one event. It runs at least once per call in the saga, so
// the event id is deterministic and consumers dedupe on it; on NATS the
// broker drops a re-publish of the same id within its duplicate window.
func (a *Activities) Publish(ctx workflow.ActivityContext) (any, error) {
	var req PublishRequest
	if err := ctx.GetInput(&req); err != nil {
		return nil, fmt.Errorf("publish: decode input: %w", err)
	}
	if err := a.pub.Publish(ctx.Context(), req.Topic, req.Key, req.Event); err != nil {
		return nil, fmt.Errorf("publish %s to %s: %w", req.Event.ID, req.Topic, err)
	}
	return nil, nil
}

// Registered lists the activities for the engine's registry.
func (a *Activities) Registered() []workflow.Activity {
	return []workflow.Activity{a.Publish}
}

// FuncName is the name go-sdk v1.11 registers a workflow or activity under:
// the last dot-separated part of the function's runtime name.
func FuncName(f any) string {
	full := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
	return full[strings.LastIndex(full, ".")+1:]
}
