package declarative_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sagabridge/sagabridge/sagas/declarative"
	"github.com/sagabridge/sagabridge/sagas/order"
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
	if !slices.Equal(defs.Keys(), []string{"OrderSaga@1"}) {
		t.Errorf("keys %v", defs.Keys())
	}
}

// TestDefinitionProblemsAllReported: one pass reports every problem, each
// with file:line.
func TestDefinitionProblemsAllReported(t *testing.T) {
	_, err := declarative.ParseDefinitions("bad.yaml", []byte(`
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

	defs, err := declarative.ParseDefinitions("meaning.yaml", []byte(`
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
	_, err = declarative.NewDefinitions(order.Compensations(), defs...)
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
	_, err := declarative.ParseDefinitions("d.yaml", []byte("name: D\nversion: 1\nsteps:\n  - name: a\n    wait: {event: e}\n    timeout: 30\n"))
	if err == nil || !strings.Contains(err.Error(), `duration "30": write it with a unit`) {
		t.Errorf("error %v", err)
	}
}

func TestLoadDefinitionsFromFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"sagas/order.yaml": {Data: order.YAML()},
		"sagas/v2.yaml":    {Data: []byte(strings.Replace(string(order.YAML()), "version: 1", "version: 2", 1))},
	}
	defs, err := declarative.LoadDefinitions(fsys, "sagas/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := declarative.NewDefinitions(order.Compensations(), defs...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Keys(), []string{"OrderSaga@1", "OrderSaga@2"}) {
		t.Errorf("keys %v", d.Keys())
	}
	if _, err := declarative.LoadDefinitions(fsys, "nothing/*.yaml"); err == nil {
		t.Error("a pattern matching nothing was accepted")
	}
	dup, _ := declarative.LoadDefinitions(fstest.MapFS{"a.yaml": {Data: order.YAML()}, "b.yaml": {Data: order.YAML()}}, "*.yaml")
	line := 1 + slices.IndexFunc(strings.Split(string(order.YAML()), "\n"), func(l string) bool { return strings.HasPrefix(l, "name:") })
	want := fmt.Sprintf("b.yaml:%d: saga OrderSaga version 1 is also defined at a.yaml:%d", line, line)
	if _, err := declarative.NewDefinitions(order.Compensations(), dup...); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("duplicate version: %v, want %q", err, want)
	}
}

func TestParseDecision(t *testing.T) {
	for in, want := range map[string]string{
		"next": "next", "complete": "complete", "fail": "fail", "": "fail", "goto  ship ": "goto ship",
	} {
		d, err := declarative.ParseDecision(in, "")
		if err != nil || d.String() != want {
			t.Errorf("ParseDecision(%q) = %s, %v; want %s", in, d, err, want)
		}
	}
	for _, bad := range []string{"goto", "jump ship", "nex"} {
		if _, err := declarative.ParseDecision(bad, ""); err == nil {
			t.Errorf("ParseDecision(%q) accepted", bad)
		}
	}
}
