package sagas_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/topics"
)

func TestOrderYAMLLoads(t *testing.T) {
	defs, err := order.Declarative()
	if err != nil {
		t.Fatal(err)
	}
	s, ok := defs.Saga("OrderSaga", 1)
	if !ok || len(s.Steps) != 3 || s.Steps[0].Compensation.Name != "release-inventory" {
		t.Fatalf("OrderSaga v1: %+v", s)
	}
	eq(t, "keys", defs.Keys(), []string{"OrderSaga@1"})
}

// TestDefinitionProblemsAllReported: one pass reports every problem, each
// with file:line.
func TestDefinitionProblemsAllReported(t *testing.T) {
	_, err := sagas.ParseDefinitions("bad.yaml", []byte(`
name: Bad
version: 1
steps:
  - name: a
    command: {topic: t, type: a, replyEvent: a.reply}
    timout: 5s
  - name: b
    command: {topic: t, type: b, replyEvnt: b.reply}
    timeout: 5s
`))
	for _, want := range []string{
		`bad.yaml:7: unknown key "timout"`,
		`bad.yaml:9: unknown key "replyEvnt"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parse error %v\nlacks %q", err, want)
		}
	}

	defs, err := sagas.ParseDefinitions("meaning.yaml", []byte(`
name: Meaning
steps:
  - name: a
    command: {topic: t, type: a, replyEvent: a.reply}
    compensation: no-such-undo
  - name: a
    activity: {name: Do}
    retry: {maxAttempts: -1, backoff: 1s, multiplier: 0.5}
  - name: c
    wait: {event: approval, onTimeout: "goto a"}
    timeout: 1h
    decide:
      - when: {field: ok, equals: true}
        then: maybe
  - name: d
    command: {topic: t, type: d, replyEvent: d.reply}
    activity: {name: Also}
    timeout: 5s
  - name: g
    parallel:
      - name: f
        wait: {event: e1}
      - name: has/slash
        child: {saga: Other}
---
name: Second
version: 1
steps: []
`))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	_, err = sagas.NewDefinitions(order.Compensations(), defs...)
	for _, want := range []string{
		"meaning.yaml:2: saga Meaning: version must be 1 or more",
		`meaning.yaml:6: saga Meaning v0 step a: compensation "no-such-undo" is not registered (known: refund-payment, release-inventory)`,
		"meaning.yaml:4: saga Meaning v0 step a: timeout must be positive",
		"meaning.yaml:7: saga Meaning v0 step a: duplicate step name",
		"maxAttempts must not be negative",
		"backoff: multiplier 0.5 is below 1",
		`meaning.yaml:10: saga Meaning v0 step c: decide: decision "maybe" is not next, complete, fail or "goto <step>"`,
		"meaning.yaml:10: saga Meaning v0 step c: onTimeout: goto a is not a later step",
		"meaning.yaml:16: saga Meaning v0 step d: has several actions (command, activity); give it one",
		"meaning.yaml:22: saga Meaning v0 step f: timeout must be positive",
		`step has/slash: name "has/slash" may hold only letters`,
		"step has/slash: child definition Other needs a version",
		"meaning.yaml:27: saga Second: no steps",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems:\n%v\nlack %q", err, want)
		}
	}
}

func TestDurationsNeedUnits(t *testing.T) {
	_, err := sagas.ParseDefinitions("d.yaml", []byte("name: D\nversion: 1\nsteps:\n  - name: a\n    wait: {event: e}\n    timeout: 30\n"))
	if err == nil || !strings.Contains(err.Error(), `duration "30": write it with a unit`) {
		t.Errorf("error %v", err)
	}
}

func TestLoadDefinitionsFromFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"sagas/order.yaml": {Data: order.YAML()},
		"sagas/v2.yaml":    {Data: []byte(strings.Replace(string(order.YAML()), "version: 1", "version: 2", 1))},
	}
	defs, err := sagas.LoadDefinitions(fsys, "sagas/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := sagas.NewDefinitions(order.Compensations(), defs...)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "keys", d.Keys(), []string{"OrderSaga@1", "OrderSaga@2"})
	if _, err := sagas.LoadDefinitions(fsys, "nothing/*.yaml"); err == nil {
		t.Error("a pattern matching nothing was accepted")
	}
	dup, _ := sagas.LoadDefinitions(fstest.MapFS{"a.yaml": {Data: order.YAML()}, "b.yaml": {Data: order.YAML()}}, "*.yaml")
	line := 1 + slices.IndexFunc(strings.Split(string(order.YAML()), "\n"), func(l string) bool { return strings.HasPrefix(l, "name:") })
	want := fmt.Sprintf("b.yaml:%d: saga OrderSaga version 1 is also defined at a.yaml:%d", line, line)
	if _, err := sagas.NewDefinitions(order.Compensations(), dup...); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("duplicate version: %v, want %q", err, want)
	}
}

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
	defs, err := sagas.ParseDefinitions("features.yaml", []byte(featuresYAML))
	if err != nil {
		t.Fatal(err)
	}
	d, err := sagas.NewDefinitions(nil, defs...)
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
