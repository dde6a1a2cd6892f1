package sagas_test

import (
	"strings"
	"testing"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas/sagatest"
	"github.com/sagabridge/sagabridge/topics"
)

// TestReplayAfterWorkerDeath stops the engine at the moment a given
// command (or the outcome) is being published, then starts a new engine
// on the same database, and checks that the saga still ends in exactly one
// outcome, that each step acted once, and that each completed step was
// compensated exactly once. The participants dedupe by command id, as the
// contract asks; an engine that re-ran a step under a new attempt, or ran
// a compensation twice, would show as a second effect.
func TestReplayAfterWorkerDeath(t *testing.T) {
	cases := []struct {
		name   string
		mode   sagatest.CrashMode
		crash  string // command type, or "outcome"
		plan   plan
		status string
		undone []string
	}{
		{name: "mid-publish of b", mode: sagatest.CrashNow, crash: "b.do", status: topics.StatusCompleted},
		{name: "mid-publish of c, c fails", mode: sagatest.CrashNow, crash: "c.do", plan: plan{Fail: []string{"c"}}, status: topics.StatusCompensated, undone: []string{"b", "a"}},
		{name: "mid-publish undoing a", mode: sagatest.CrashNow, crash: "a.undo", plan: plan{Fail: []string{"c"}}, status: topics.StatusCompensated, undone: []string{"b", "a"}},
		{name: "mid-publish of the outcome", mode: sagatest.CrashNow, crash: "outcome", status: topics.StatusCompleted},
		{name: "at a", mode: sagatest.CrashStop, crash: "a.do", status: topics.StatusCompleted},
		{name: "between a and b", mode: sagatest.CrashStop, crash: "b.do", status: topics.StatusCompleted},
		{name: "between b and c", mode: sagatest.CrashStop, crash: "c.do", status: topics.StatusCompleted},
		{name: "at the outcome", mode: sagatest.CrashStop, crash: "outcome", status: topics.StatusCompleted},
		{name: "c fails, at c", mode: sagatest.CrashStop, crash: "c.do", plan: plan{Fail: []string{"c"}}, status: topics.StatusCompensated, undone: []string{"b", "a"}},
		{name: "c fails, undoing b", mode: sagatest.CrashStop, crash: "b.undo", plan: plan{Fail: []string{"c"}}, status: topics.StatusCompensated, undone: []string{"b", "a"}},
		{name: "c fails, undoing a", mode: sagatest.CrashStop, crash: "a.undo", plan: plan{Fail: []string{"c"}}, status: topics.StatusCompensated, undone: []string{"b", "a"}},
		{name: "b fails, at the outcome", mode: sagatest.CrashStop, crash: "outcome", plan: plan{Fail: []string{"b"}}, status: topics.StatusCompensated, undone: []string{"a"}},
		{name: "lost ack between a and b", mode: sagatest.CrashLostAck, crash: "b.do", status: topics.StatusCompleted},
		{name: "lost ack undoing a", mode: sagatest.CrashLostAck, crash: "a.undo", plan: plan{Fail: []string{"c"}}, status: topics.StatusCompensated, undone: []string{"b", "a"}},
		{name: "lost ack at the outcome", mode: sagatest.CrashLostAck, crash: "outcome", status: topics.StatusCompleted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"ThreeSteps": ThreeSteps}})
			const id = "crash-1"
			k.CrashOn(tc.mode, func(topic string, ev topics.CloudEvent) bool {
				if tc.crash == "outcome" {
					return topic == topics.Outcomes
				}
				return topic == cmdTopic && ev.Type == tc.crash
			})
			k.Start("ThreeSteps", id, tc.plan)
			out := k.Outcome(id)
			if out.Status != tc.status {
				t.Fatalf("status %s, want %s (%s)", out.Status, tc.status, out.Error)
			}
			eq(t, "compensated", out.Compensated, tc.undone)
			if outs := k.Outcomes(id); len(outs) != 1 {
				t.Errorf("%d distinct outcome events, want 1", len(outs))
			}
			for _, step := range []string{"a", "b", "c"} {
				// A refused step, and the steps after it, have no effect.
				ran := 1
				if len(tc.plan.Fail) > 0 && step >= tc.plan.Fail[0] {
					ran = 0
				}
				if got := k.parts.effect(id + "/" + step); got != ran {
					t.Errorf("step %s acted on %d times, want %d", step, got, ran)
				}
				want := 0
				for _, u := range tc.undone {
					if u == step {
						want = 1
					}
				}
				if got := k.parts.effect(id + "/" + step + "/undo"); got != want {
					t.Errorf("step %s compensated %d times, want %d", step, got, want)
				}
			}
			if tc.mode == sagatest.CrashLostAck {
				// The event the worker died on was sent twice, under one id.
				sent := len(k.Published(topics.Outcomes))
				if tc.crash != "outcome" {
					sent = k.parts.deliveries()[crashedID(id, tc.crash)]
				}
				if sent != 2 {
					t.Errorf("the event the worker died on was sent %d times, want 2 (same id)", sent)
				}
			}
			t.Logf("commands %v; deliveries per id %v", k.commandsOf(id), k.parts.deliveries())
		})
	}
}

// crashedID is the command id of "b.do" or "a.undo" at attempt 1.
func crashedID(instance, typ string) string {
	step, kind, _ := strings.Cut(typ, ".")
	return topics.CommandID(instance, step, kind == "undo", 1)
}
