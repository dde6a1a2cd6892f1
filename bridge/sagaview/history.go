package sagaview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

// Kinds of timeline entries.
const (
	EntryStarted     = "started"
	EntryCommand     = "command"
	EntryActivity    = "activity"
	EntryStep        = "step"
	EntryReply       = "event"
	EntryTimer       = "timer"
	EntryRetry       = "retry"
	EntryChild       = "child"
	EntryCompensate  = "compensation"
	EntryOutcome     = "outcome"
	EntryDivergence  = "divergence"
	EntryFinished    = "finished"
	EntryTerminated  = "terminated"
	EntrySuspended   = "suspended"
	EntryResumed     = "resumed"
	EntryProgressPub = "progress"
)

// Entry is one thing that happened to a saga instance.
type Entry struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	// Step and Attempt are the saga step it belongs to (a compensation's
	// step is the step it undoes).
	Step    string `json:"step,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// Name is the activity, event, child workflow or command type.
	Name  string `json:"name,omitempty"`
	Topic string `json:"topic,omitempty"`
	// Key is the idempotency key a participant dedupes on (the command's
	// CloudEvent id, or the activity request's ID).
	Key string `json:"key,omitempty"`
	// Until is when the entry's work ended (a command's publish, an
	// activity, a timer, a child saga); zero while it has not.
	Until  time.Time `json:"until,omitzero"`
	Status string    `json:"status,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Error  string    `json:"error,omitempty"`
	// Payload is the input, event data or outcome, as JSON when it is.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Bar is a step or a compensation over time, for the timeline picture.
type Bar struct {
	Step         string    `json:"step"`
	Compensation bool      `json:"compensation,omitempty"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end,omitzero"`
	// Status is the step's result in the outcome (done, failed,
	// timed-out, compensated, compensation-failed), or running / waiting
	// for the one the saga is on.
	Status   string `json:"status"`
	Attempts int    `json:"attempts,omitempty"`
}

// History is one instance's timeline.
type History struct {
	Instance Instance        `json:"instance"`
	Input    json.RawMessage `json:"input,omitempty"`
	Outcome  *topics.Outcome `json:"outcome,omitempty"`
	Entries  []Entry         `json:"entries"`
	Bars     []Bar           `json:"bars"`
	// Source is "engine" (the engine's history) or "progress-events" (what
	// this worker saw published, where the engine keeps no history).
	Source string `json:"source"`
	Note   string `json:"note,omitempty"`
}

// Sources of a history.
const (
	HistoryFromEngine   = "engine"
	HistoryFromProgress = "progress-events"
)

// History returns an instance's timeline; engine.ErrNotFound when the
// engine does not know the instance.
func (s *Service) History(ctx context.Context, instanceID string) (History, error) {
	st, err := s.eng.Get(ctx, instanceID)
	if err != nil {
		return History{}, err
	}
	if st.Workflow == "" && st.RuntimeStatus == "" {
		return History{}, fmt.Errorf("workflow instance %s: %w", instanceID, engine.ErrNotFound)
	}
	h := History{Instance: Describe(st), Input: startInput(st.Input), Entries: []Entry{}, Bars: []Bar{}}
	if o, err := progress.FromOutput(st.Output); err == nil && o.Outcome != nil {
		h.Outcome = o.Outcome
	}
	events, err := s.eng.History(ctx, instanceID)
	switch {
	case err == nil:
		h.Source = HistoryFromEngine
		h.Entries = timeline(events)
	case errors.Is(err, engine.ErrNoHistory):
		h.Source = HistoryFromProgress
		h.Note = "daprd serves no workflow history: this timeline is built from the progress and outcome events this worker saw (commands with their idempotency keys, compensations, the outcome; no reply payloads or timers)"
		h.Entries = progressTimeline(st, s.progress.Events(instanceID))
	default:
		return History{}, err
	}
	if h.Outcome == nil {
		for _, e := range h.Entries {
			if e.Kind == EntryOutcome {
				var o topics.Outcome
				if json.Unmarshal(e.Payload, &o) == nil {
					h.Outcome = &o
				}
			}
		}
	}
	// The engine's last update can come after the end (a reply deadline
	// firing late); the outcome, or the engine's completion event, says
	// when the saga ended.
	for _, e := range h.Entries {
		if e.Kind == EntryFinished || e.Kind == EntryTerminated {
			h.Instance.FinishedAt = e.At
		}
	}
	if h.Outcome != nil && !h.Outcome.FinishedAt.IsZero() {
		h.Instance.FinishedAt = h.Outcome.FinishedAt
	}
	h.Bars = bars(h.Entries, h.Outcome, h.Instance)
	return h, nil
}

// jsonOrString keeps JSON as it is and quotes anything else.
func jsonOrString(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

// timeline reads the engine's history: each saga activity's input says
// what it was (a command, a compensation, a progress or outcome publish).
func timeline(events []engine.HistoryEvent) []Entry {
	out := []Entry{}
	byTask := map[int32]int{} // scheduled event ID -> index in out
	timers := map[int32]int{} // timer created event ID -> index
	for _, ev := range events {
		switch ev.Type {
		case engine.EventStarted:
			out = append(out, Entry{At: ev.At, Kind: EntryStarted, Name: ev.Name, Payload: startInput(ev.Input)})
		case engine.EventTaskScheduled:
			e, ok := task(ev)
			if !ok {
				continue // a progress publish
			}
			if e.Kind != EntryStep {
				byTask[ev.ID] = len(out)
			}
			out = append(out, e)
		case engine.EventTaskCompleted, engine.EventChildDone:
			if i, ok := byTask[ev.TaskID]; ok && out[i].Kind == EntryOutcome {
				out[i].Until, out[i].Detail = ev.At, "published"
			} else if ok {
				out[i].Until, out[i].Status = ev.At, "ok"
				if out[i].Kind == EntryChild || out[i].Kind == EntryActivity || (out[i].Kind == EntryCompensate && out[i].Topic == "") {
					out[i].Detail = joinDetail(out[i].Detail, "result "+clip(ev.Result))
				}
			}
		case engine.EventTaskFailed, engine.EventChildFailed:
			if i, ok := byTask[ev.TaskID]; ok {
				out[i].Until, out[i].Status, out[i].Error = ev.At, "failed", ev.Failure
			}
		case engine.EventTimerCreated:
			timers[ev.ID] = len(out)
			out = append(out, Entry{At: ev.At, Kind: EntryTimer, Until: ev.FireAt, Detail: "fires after " + ev.FireAt.Sub(ev.At).Round(time.Millisecond).String()})
		case engine.EventTimerFired:
			if i, ok := timers[ev.TaskID]; ok {
				out[i].Status = "fired"
			}
		case engine.EventRaised:
			if ev.Name == engine.NudgeEvent {
				continue
			}
			e := Entry{At: ev.At, Kind: EntryReply, Name: ev.Name, Payload: jsonOrString(ev.Input)}
			var rep topics.Reply
			if json.Unmarshal([]byte(ev.Input), &rep) == nil && rep.Step != "" {
				e.Step, e.Status, e.Key = rep.Step, rep.Status, rep.CommandID
			}
			out = append(out, e)
		case engine.EventChildCreated:
			byTask[ev.ID] = len(out)
			out = append(out, Entry{At: ev.At, Kind: EntryChild, Name: ev.Name, Detail: "child instance " + ev.InstanceID, Key: ev.InstanceID})
		case engine.EventCompleted:
			out = append(out, Entry{At: ev.At, Kind: EntryFinished, Status: ev.Status, Error: ev.Failure})
		case engine.EventTerminated:
			out = append(out, Entry{At: ev.At, Kind: EntryTerminated, Detail: unquote(ev.Input)})
		case engine.EventSuspended:
			out = append(out, Entry{At: ev.At, Kind: EntrySuspended, Detail: unquote(ev.Input)})
		case engine.EventResumed:
			out = append(out, Entry{At: ev.At, Kind: EntryResumed, Detail: unquote(ev.Input)})
		}
	}
	labelTimers(out)
	return out
}

// labelTimers tells a reply deadline (a timer started as a command's
// publish ends) and a retry backoff (a timer followed by a later attempt
// of a step) from other timers.
func labelTimers(out []Entry) {
	for i := range out {
		if out[i].Kind != EntryTimer {
			continue
		}
		for j := i + 1; j < len(out); j++ {
			if n := out[j]; n.Step != "" && (n.Kind == EntryCommand || n.Kind == EntryActivity || n.Kind == EntryCompensate) {
				if n.Attempt > 1 && out[i].Status == "fired" {
					out[i].Kind, out[i].Step = EntryRetry, n.Step
					out[i].Detail = fmt.Sprintf("backoff %s before attempt %d", out[i].Until.Sub(out[i].At).Round(time.Millisecond), n.Attempt)
				}
				break
			}
		}
		if n := i + 1; out[i].Kind == EntryTimer && n < len(out) && out[n].Kind == EntryStep && out[n].Name == sagas.KindWait && out[n].At.Sub(out[i].At).Abs() < 50*time.Millisecond {
			out[i].Step = out[n].Step
			out[i].Detail = "timeout of " + out[n].Step + ": " + out[i].Detail
			continue
		}
		if out[i].Kind == EntryTimer {
			for j := i - 1; j >= 0; j-- {
				if p := out[j]; p.Kind == EntryCommand || p.Kind == EntryCompensate && p.Topic != "" {
					out[i].Step = p.Step
					out[i].Detail = "reply deadline of " + p.Step + " attempt " + fmt.Sprint(p.Attempt) + ": " + out[i].Detail
					break
				} else if p.Kind != EntryTimer && p.Kind != EntryReply {
					break
				}
			}
		}
	}
}

// startInput is the saga's input without its start envelope (the version,
// migration and trace context it was started with).
func startInput(raw string) json.RawMessage {
	st, err := sagas.DecodeStart([]byte(raw))
	if err != nil || !json.Valid(st.Input) {
		return jsonOrString(raw)
	}
	// A declarative saga's input of an earlier release held its version.
	if p, err := st.Pinned(); err == nil && p.Version > 0 && p.Digest != "" && len(p.Input) > 0 {
		return p.Input
	}
	return st.Input
}

// task reads a scheduled activity; ok is false for a progress publish.
func task(ev engine.HistoryEvent) (Entry, bool) {
	e := Entry{At: ev.At, Kind: EntryActivity, Name: ev.Name}
	if ev.Name == sagas.PublishActivity {
		var req sagas.PublishRequest
		if err := json.Unmarshal([]byte(ev.Input), &req); err != nil {
			e.Detail = "undecodable publish: " + err.Error()
			return e, true
		}
		e.Topic, e.Key, e.Name = req.Topic, req.Event.ID, req.Event.Type
		switch {
		case req.Event.Type == progress.Type:
			// A step that sends no command of its own (a wait, a child,
			// a func) shows only in its progress event.
			var p progress.Progress
			if json.Unmarshal(req.Event.Data, &p) != nil || p.Status != progress.Running ||
				(p.Kind != sagas.KindWait && p.Kind != sagas.KindChild && p.Kind != sagas.KindFunc) {
				return e, false
			}
			e = Entry{At: ev.At, Kind: EntryStep, Step: p.Step, Attempt: p.Attempt, Name: p.Kind}
			for _, w := range p.WaitingFor {
				e.Detail = joinDetail(e.Detail, "waiting for "+w)
			}
		case strings.HasPrefix(req.Event.Type, "sagabridge.saga."):
			e.Kind, e.Payload = EntryOutcome, req.Event.Data
			var o topics.Outcome
			if json.Unmarshal(req.Event.Data, &o) == nil {
				e.Status = o.Status
				e.Error = o.Error
			}
		case req.Event.Type == topics.DivergenceType:
			e.Kind, e.Payload = EntryDivergence, req.Event.Data
			var d topics.Divergence
			if json.Unmarshal(req.Event.Data, &d) == nil {
				e.Step, e.Detail = d.Step, d.Kind+": "+d.Detail
			}
		default:
			var c topics.Command
			if json.Unmarshal(req.Event.Data, &c) == nil && c.Step != "" {
				e.Kind, e.Step, e.Attempt, e.Payload = EntryCommand, c.Step, c.Attempt, c.Payload
				if c.Compensate {
					e.Kind = EntryCompensate
				}
			} else {
				e.Detail, e.Payload = "event published", req.Event.Data
			}
		}
		return e, true
	}
	var req sagas.Request
	if json.Unmarshal([]byte(ev.Input), &req) == nil && req.Step != "" {
		e.Step, e.Attempt, e.Key, e.Payload = req.Step, req.Attempt, req.ID, req.Payload
		if req.Compensate {
			e.Kind = EntryCompensate
		}
	}
	return e, true
}

// bars turns the entries into one bar per step and per compensation: each
// runs from its first entry to the next bar's first (or to the end).
func bars(entries []Entry, out *topics.Outcome, in Instance) []Bar {
	res := []Bar{}
	type key struct {
		step string
		comp bool
	}
	idx := map[key]int{}
	for _, e := range entries {
		if e.Step == "" || e.Kind == EntryTimer || e.Kind == EntryRetry || e.Kind == EntryReply || e.Kind == EntryDivergence {
			continue
		}
		comp := e.Kind == EntryCompensate || e.Kind == EntryStep && e.Detail == "compensating"
		k := key{e.Step, comp}
		if i, ok := idx[k]; ok {
			res[i].Attempts = max(res[i].Attempts, e.Attempt)
			continue
		}
		if n := len(res); n > 0 && res[n-1].End.IsZero() {
			res[n-1].End = e.At
		}
		idx[k] = len(res)
		res = append(res, Bar{Step: e.Step, Compensation: comp, Start: e.At, Attempts: max(e.Attempt, 1)})
	}
	end := in.FinishedAt
	for _, e := range entries {
		if e.Kind == EntryOutcome || e.Kind == EntryFinished || e.Kind == EntryTerminated {
			end = e.At
			break
		}
	}
	if n := len(res); n > 0 && res[n-1].End.IsZero() {
		res[n-1].End = end // zero while it runs
	}
	for i := range res {
		b := &res[i]
		switch {
		case out != nil:
			b.Status = topics.StepDone
			for _, s := range out.Steps {
				if s.Name != b.Step {
					continue
				}
				switch {
				case b.Compensation && s.Status == topics.StepCompensationFailed:
					b.Status = s.Status
				case b.Compensation:
					b.Status = topics.StepCompensated
				case s.Status == topics.StepCompensated || s.Status == topics.StepCompensationFailed:
					b.Status = topics.StepDone
				default:
					b.Status = s.Status
				}
			}
		case b.End.IsZero() && in.FinishedAt.IsZero():
			b.Status = in.Status
			if b.Status != Waiting {
				b.Status = Running
			}
		default:
			b.Status = topics.StepDone
		}
	}
	if out != nil {
		inSagaOrder(res, out.Steps)
	}
	return res
}

// inSagaOrder puts the forward bars in the order the outcome lists the
// steps, compensations after them as they ran. The entries' order is not
// enough: a wait step whose event was raised before the saga's first turn
// finishes without a progress entry of its own, so its first entry comes
// after the next step's.
func inSagaOrder(res []Bar, steps []topics.StepResult) {
	rank := func(b Bar) int {
		if b.Compensation {
			return len(steps)
		}
		if i := slices.IndexFunc(steps, func(s topics.StepResult) bool { return s.Name == b.Step }); i >= 0 {
			return i
		}
		return len(steps)
	}
	slices.SortStableFunc(res, func(a, b Bar) int { return rank(a) - rank(b) })
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func unquote(s string) string {
	var out string
	if json.Unmarshal([]byte(s), &out) == nil {
		return out
	}
	return s
}
