package sagas_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/internal/daprtest"
	"github.com/sagabridge/sagabridge/sagas/sagatest"
	"github.com/sagabridge/sagabridge/topics"
)

// kit is the public test kit (sagas/sagatest) with the participants of
// these tests, which answer as the plan in a saga's input says.
type kit struct {
	*sagatest.Env
	parts *participants
}

type kitOptions struct {
	workflows  map[string]workflow.Workflow
	activities map[string]workflow.Activity
	// db reuses a database file (a second worker on the same data).
	db string
	// dapr, when set, runs the worker against this daprd sidecar instead
	// of the embedded engine; restarts then replace the worker only (the
	// app dies, daprd and its Redis state stay).
	dapr *daprtest.Sidecar
}

func newKit(t *testing.T, opts kitOptions) *kit {
	t.Helper()
	o := sagatest.Options{Workflows: opts.workflows, Activities: opts.activities, DB: opts.db}
	if opts.dapr != nil {
		o.Engine = &engine.Config{Kind: engine.KindDapr, Dapr: engine.DaprConfig{GRPCEndpoint: opts.dapr.GRPCAddr()}}
	}
	k := &kit{Env: sagatest.New(t, o), parts: newParticipants()}
	k.Participant(k.parts.handle)
	return k
}

// commandsOf lists the distinct commands sent for an instance on the test
// sagas' command topic, in order, as "type#attempt".
func (k *kit) commandsOf(id string) []string {
	var out []string
	for _, c := range k.SentCommands(id) {
		if c.Topic == cmdTopic {
			out = append(out, c.Event.Type+"#"+strconv.Itoa(c.Attempt))
		}
	}
	return out
}

func distinct(evs []topics.CloudEvent) []topics.CloudEvent { return sagatest.Distinct(evs) }

func eq[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
