package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/backend"
)

// RerunWorkflowFromEvent starts a new instance from a finished one's
// history up to one of its activity calls (TaskScheduled) or timers
// (TimerCreated), as daprd 1.16 does: the new instance keeps the results
// of the activities and timers that finished before that event, and runs
// that one again (with req.Input if OverwriteInput is set) along with any
// started before it and not finished. The source must have finished; the
// new ID (a random one if unset) must be free.
func (b *Backend) RerunWorkflowFromEvent(ctx context.Context, req *backend.RerunWorkflowFromEventRequest) (api.InstanceID, error) {
	src := req.GetSourceInstanceID()
	if src == "" {
		return "", status.Error(codes.InvalidArgument, "rerun: a source instance ID is required")
	}
	id := req.GetNewInstanceID()
	if id == "" {
		id = uuid.NewString()
	}
	if id == src {
		return "", status.Error(codes.InvalidArgument, "rerun: the new instance ID must differ from the source's")
	}
	md, err := b.GetOrchestrationMetadata(ctx, api.InstanceID(src))
	if err != nil {
		return "", err
	}
	if !isFinished(md.RuntimeStatus) {
		return "", status.Errorf(codes.InvalidArgument, "rerun: %s is %s, not finished", src, statusName(md.RuntimeStatus))
	}
	old, err := b.readHistory(ctx, src)
	if err != nil {
		return "", err
	}
	history, rerun, err := forkHistory(old, int32(req.GetEventID()), req.GetOverwriteInput(), req.Input)
	if err != nil {
		return "", err
	}
	var start *protos.ExecutionStartedEvent
	for _, e := range history {
		if es := e.GetExecutionStarted(); es != nil {
			start = es
			es.OrchestrationInstance = &protos.OrchestrationInstance{InstanceId: id, ExecutionId: wrapperspb.String(uuid.NewString())}
			es.ParentInstance = nil
			break
		}
	}
	if start == nil {
		return "", fmt.Errorf("store: rerun: %s has no ExecutionStarted event", src)
	}
	r, err := b.rerunRequest(src, id, start, history, rerun)
	if err != nil {
		return "", err
	}
	if err := b.submit(ctx, r); err != nil {
		return "", err
	}
	return api.InstanceID(id), nil
}

// rerunRequest is the write that creates instance id from the forked
// history and the events to run again (rerun): a task scheduled again is
// queued, a timer created again fires at once.
func (b *Backend) rerunRequest(src, id string, start *protos.ExecutionStartedEvent, history, rerun []*backend.HistoryEvent) (*request, error) {
	now := timestamppb.Now()
	var tasks, timers []*backend.HistoryEvent
	for _, e := range rerun {
		e.Timestamp = now
		history = append(history, e)
		if e.GetTaskScheduled() != nil {
			tasks = append(tasks, e)
			continue
		}
		timers = append(timers, &protos.HistoryEvent{
			EventId:   -1,
			Timestamp: now,
			EventType: &protos.HistoryEvent_TimerFired{TimerFired: &protos.TimerFiredEvent{
				TimerId: e.EventId,
				FireAt:  e.GetTimerCreated().GetFireAt(),
			}},
		})
	}
	chunk, err := encodeEvents(history)
	if err != nil {
		return nil, err
	}
	taskData, err := marshalEvents(tasks)
	if err != nil {
		return nil, err
	}
	timerData, err := marshalEvents(timers)
	if err != nil {
		return nil, err
	}
	var input any
	if start.Input != nil {
		input = start.Input.GetValue()
	}
	r := &request{}
	r.apply = func() (func(), error) {
		if _, exists, err := b.instanceStatus(id); err != nil || exists {
			if err == nil {
				err = fmt.Errorf("rerun %s as %s: %w", src, id, api.ErrDuplicateInstance)
			}
			return nil, err
		}
		ts := b.now()
		if _, err := b.ws.insInstance.exec(id, start.Name, start.Version.GetValue(), start.OrchestrationInstance.ExecutionId.GetValue(),
			nil, int64(api.RUNTIME_STATUS_RUNNING), ts, ts, input); err != nil {
			return nil, err
		}
		if _, err := b.ws.insHistory.exec(id, int64(0), chunk); err != nil {
			return nil, err
		}
		taskSeqs := make([]int64, len(tasks))
		for i := range tasks {
			taskSeqs[i] = b.seq()
			if _, err := b.ws.insTask.exec(taskSeqs[i], id, taskData[i]); err != nil {
				return nil, err
			}
		}
		timerSeqs := make([]int64, len(timers))
		for i := range timers {
			timerSeqs[i] = b.seq()
			if _, err := b.ws.insInbox.exec(timerSeqs[i], id, int64(0), timerData[i]); err != nil {
				return nil, err
			}
		}
		return func() {
			for i, e := range tasks {
				t := &qTask{seq: taskSeqs[i], instance: id, event: e}
				b.taskSeqs[t.seq] = t
				b.pushTask(t)
			}
			for i, e := range timers {
				b.addPending(id, &qEvent{seq: timerSeqs[i], event: e})
			}
			b.notify(id)
		}, nil
	}
	return r, nil
}

// marshalEvents is each event's wire form.
func marshalEvents(events []*backend.HistoryEvent) ([][]byte, error) {
	var out [][]byte
	for _, e := range events {
		p, err := backend.MarshalHistoryEvent(e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// forkHistory splits a finished instance's history at the event target
// (an activity call or a timer): it returns the history to keep (each
// finished activity and timer with its result, everything else as it
// was) and the events to run again, target last and the others in the
// order they were scheduled. The returned events are copies.
func forkHistory(old []*backend.HistoryEvent, target int32, overwrite bool, input *wrapperspb.StringValue) ([]*backend.HistoryEvent, []*backend.HistoryEvent, error) {
	var kept []*backend.HistoryEvent
	open := map[int32]*backend.HistoryEvent{} // activities and timers started, not finished
	var found *backend.HistoryEvent
	for _, e := range old {
		e = proto.Clone(e).(*backend.HistoryEvent)
		if e.GetTaskScheduled() != nil || e.GetTimerCreated() != nil {
			if e.EventId == target {
				found = e
				break
			}
			open[e.EventId] = e
			continue
		}
		var done int32 = -1
		switch {
		case e.GetTaskCompleted() != nil:
			done = e.GetTaskCompleted().TaskScheduledId
		case e.GetTaskFailed() != nil:
			done = e.GetTaskFailed().TaskScheduledId
		case e.GetTimerFired() != nil:
			done = e.GetTimerFired().TimerId
		}
		if s := open[done]; s != nil {
			kept = append(kept, s)
			delete(open, done)
		}
		kept = append(kept, e)
	}
	if found == nil {
		for _, e := range old {
			if e.EventId == target && target >= 0 {
				return nil, nil, status.Errorf(codes.NotFound, "rerun: event %d (%s) is neither an activity call nor a timer", target, eventKind(e))
			}
		}
		return nil, nil, status.Errorf(codes.NotFound, "rerun: no activity call or timer with event ID %d", target)
	}
	if overwrite {
		if found.GetTaskScheduled() == nil {
			return nil, nil, status.Errorf(codes.InvalidArgument, "rerun: event %d is a timer, which takes no input", target)
		}
		found.GetTaskScheduled().Input = input
	}
	ids := make([]int32, 0, len(open))
	for id := range open {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var rerun []*backend.HistoryEvent
	for _, id := range ids {
		rerun = append(rerun, open[id])
	}
	return kept, append(rerun, found), nil
}

func eventKind(e *backend.HistoryEvent) string {
	return fmt.Sprintf("%T", e.GetEventType())
}
