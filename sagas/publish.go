package sagas

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dapr/durabletask-go/workflow"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sagabridge/sagabridge/topics"
)

// callActivity schedules an activity with a JSON input, marshalled here so
// that a marshalling error names the activity.
func (r *run) callActivity(name string, input any) awaitable {
	raw, err := json.Marshal(input)
	if err != nil {
		return failedTask{fmt.Errorf("activity %s: marshal input: %w", name, err)}
	}
	if err := r.hist.room("the input of activity "+name, len(raw)); err != nil {
		return failedTask{err}
	}
	r.hist.add(len(raw))
	return sizedTask{h: r.hist, t: r.ctx.CallActivity(name, workflow.WithRawActivityInput(wrapperspb.String(string(raw))))}
}

func (r *run) callPublish(req PublishRequest) awaitable {
	if tp := r.trace.TraceParent; tp != "" {
		if req.Event.TraceParent == "" {
			req.Event.TraceParent = tp
		}
		if req.Progress != nil && req.Progress.TraceParent == "" {
			p := *req.Progress
			p.TraceParent = tp
			req.Progress = &p
		}
	}
	return r.callActivity(PublishActivity, req)
}

// awaitPublish awaits a Publish activity, calling it again with a durable
// timer in between while the broker refuses.
func (r *run) awaitPublish(t awaitable, req PublishRequest) error {
	delay := time.Second
	for attempt := 1; ; attempt++ {
		err := t.Await(nil)
		if err == nil {
			return nil
		}
		if attempt >= publishAttempts || isHistoryFull(err) {
			return err
		}
		if err := r.sleep(delay); err != nil {
			return err
		}
		delay = min(delay*2, publishMaxDelay)
		t = r.callPublish(req)
	}
}

// publish sends one event and waits until the broker stored it.
func (r *run) publish(topic string, ev topics.CloudEvent) error {
	req := PublishRequest{Topic: topic, Key: r.id, Event: ev}
	return r.awaitPublish(r.callPublish(req), req)
}

// sleep waits on a durable timer.
func (r *run) sleep(d time.Duration) error {
	r.hist.add(0) // TimerCreated; TimerFired is counted by Await
	return sizedTask{h: r.hist, t: r.ctx.CreateTimer(d)}.Await(nil)
}

// PublishDurably is the saga runtime's publish for Func steps: it runs the
// Publish activity and retries with durable timers while the broker
// refuses (for about 45 minutes). The event id must be deterministic.
func PublishDurably(ctx *workflow.WorkflowContext, topic string, ev topics.CloudEvent) error {
	r := &run{ctx: ctx, id: ctx.ID(), trace: traceOf(ctx), hist: newHistory(0, 0)}
	return r.publish(topic, ev)
}

// publishAttempts bounds how long a saga keeps trying to publish one event
// while the broker is down: with the backoff below, about 45 minutes. After
// that the workflow fails and shows up as FAILED in `sagabridge workflow get`.
const (
	publishAttempts = 100
	publishMaxDelay = 30 * time.Second
)
