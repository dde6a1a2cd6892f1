package sagas_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/topics"
)

func TestOrderSagaIsValid(t *testing.T) {
	if err := order.Saga(order.DefaultStepTimeout).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	decide := func(*sagas.State) (sagas.Decision, error) { return sagas.Next(), nil }
	s := sagas.Saga{Name: "V", Steps: []sagas.Step{
		{Name: "empty"},
		{Name: "cmd", Command: topics.CommandSpec{Topic: "t", Type: "x"}},
		{Name: "act", Activity: &sagas.Activity{}, Timeout: -time.Second},
		{Name: "kid", Child: &sagas.Child{Workflow: "K"}, Timeout: time.Second},
		{Name: "wait", Wait: &sagas.Wait{Event: "e"}, Timeout: time.Second, MaxAttempts: 2,
			Input: func(*sagas.State) (any, error) { return nil, nil }},
		{Name: "late", Wait: &sagas.Wait{Event: "e2", OnTimeout: sagas.Goto("cmd")}, Timeout: time.Second},
		{Name: "group", Parallel: []sagas.Step{{Name: "m", Wait: &sagas.Wait{Event: "m"}, Timeout: time.Second, Decide: decide}}},
		{Name: "branch", Decide: decide, Timeout: time.Second},
	}}
	err := s.Validate()
	for _, want := range []string{
		"step empty: needs an action",
		"step cmd: command needs topic, type and replyEvent",
		"step cmd: timeout must be positive",
		"step act: activity needs a name",
		"step act: timeout must not be negative",
		"step kid: a child step takes no timeout",
		"step wait: a wait is never repeated",
		"step wait: a wait step sends nothing, so it takes no input",
		"step late: onTimeout: goto cmd is not a later step",
		"step m: only top-level steps decide",
		"step branch: a branch step takes no timeout",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation:\n%v\nlacks %q", err, want)
		}
	}
}
