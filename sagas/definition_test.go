package sagas_test

import (
	"testing"

	"github.com/sagabridge/sagabridge/sagas/declarative"
	"github.com/sagabridge/sagabridge/topics"
)

// featuresYAML uses every declarative feature: an activity with params, a
// parallel group, a wait with decisions, a declarative child, a custom
// reply rule and inline compensations.
const featuresYAML = `
name: Features
version: 1
steps:
  - name: reserve
    activity: {name: Reserve, params: {qty: 2}}
    retry: {maxAttempts: 3, backoff: 10ms}
    compensation: {name: release, activity: Release}
  - name: fan
    parallel:
      - name: p1
        command: {topic: test.commands, type: p1.do, replyEvent: p1.do.reply}
        reply: {statusField: status, ok: [ok, done]}
        timeout: 10s
        compensation:
          name: undo-p1
          command: {topic: test.commands, type: p1.undo, replyEvent: p1.undo.reply}
          timeout: 10s
          retry: {maxAttempts: 2}
      - name: p2
        command: {topic: test.commands, type: p2.do, replyEvent: p2.do.reply}
        timeout: 10s
  - name: approval
    wait: {event: approval, onTimeout: fail, reason: nobody answered}
    timeout: 10s
    decide:
      - when: {field: approved, equals: true}
        then: next
      - when: {field: approved, equals: "skip"}
        then: goto done
      - then: fail
        reason: rejected
  - name: ship
    child: {saga: Child, version: 1}
  - name: done
    decide:
      - then: complete
---
name: Child
version: 1
steps:
  - name: pack
    command: {topic: test.commands, type: pack.do, replyEvent: pack.do.reply}
    timeout: 10s
`

func TestDeclarativeFeatures(t *testing.T) {
	defs, err := declarative.ParseDefinitions("features.yaml", []byte(featuresYAML))
	if err != nil {
		t.Fatal(err)
	}
	d, err := declarative.NewDefinitions(nil, defs...)
	if err != nil {
		t.Fatal(err)
	}
	sh := newShop()
	k := newKit(t, kitOptions{workflows: d.Workflows(), activities: sh.activities()})
	for _, id := range []string{"feat-yes", "feat-no", "feat-skip"} {
		in, err := startInput(d, "Features", 1, []byte(`{"failReserve":1}`))
		if err != nil {
			t.Fatal(err)
		}
		k.StartRaw("Features", id, in)
	}
	k.Raise("feat-yes", "approval", map[string]any{"approved": true})
	k.Raise("feat-no", "approval", map[string]any{"approved": false})
	k.Raise("feat-skip", "approval", map[string]any{"approved": "skip"})

	t.Run("approved runs the child", func(t *testing.T) {
		out := k.Outcome("feat-yes")
		eq(t, "steps", stepNames(out), []string{"reserve:done", "p1:done", "p2:done", "approval:done", "ship:done", "done:done"})
		if child := k.Outcome("feat-yes:ship:1"); child.Saga != "Child" || child.Status != topics.StatusCompleted {
			t.Errorf("child %+v", child)
		}
		if n := len(sh.requests("reserve", "feat-yes")); n != 2 {
			t.Errorf("%d reserve attempts, want 2", n)
		}
	})
	t.Run("rejected undoes the group and the activity", func(t *testing.T) {
		out := k.Outcome("feat-no")
		if out.Status != topics.StatusCompensated || out.Error != "step approval: rejected" {
			t.Fatalf("outcome %+v", out)
		}
		eq(t, "compensated", out.Compensated, []string{"p1", "reserve"})
	})
	t.Run("skip jumps over the child", func(t *testing.T) {
		out := k.Outcome("feat-skip")
		eq(t, "steps", stepNames(out), []string{"reserve:done", "p1:done", "p2:done", "approval:done", "done:done"})
	})
}
