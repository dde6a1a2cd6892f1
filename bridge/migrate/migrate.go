// Package migrate decides, per new workflow instance, whether the saga
// drives it (active) or follows the legacy choreography (shadow), and
// summarises how shadow instances compared with the legacy flow.
//
// The decision is a stable hash of the instance ID, so the same order gets
// the same answer on every replica and after every restart, and it is
// pinned in the instance's start envelope (sagas.Start): raising the canary
// percentage changes only instances that start afterwards.
package migrate

import (
	"hash/fnv"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/sagas/migration"
	"github.com/sagabridge/sagabridge/topics"
)

// Bucket places a key on the canary scale, 0..99: FNV-1a (64 bit) of the
// key, modulo 100. A legacy service that wants to know without asking
// computes the same.
func Bucket(key string) int {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int(h.Sum64() % 100)
}

// Plan is one workflow's migration as configured now.
type Plan struct {
	Workflow     string
	Stage        string // config.MigrationShadow, Canary or Active
	Percent      int
	HandoffTopic string
	observe      *migration.Observe
	shadowTopic  string
	divTopic     string
}

// Assign decides how the instance runs, as of now.
func (p Plan) Assign(instanceID string) migration.Assignment {
	b := Bucket(instanceID)
	a := migration.Assignment{Stage: p.Stage, Percent: p.share(), Bucket: b, Mode: topics.ModeShadow}
	if b < a.Percent {
		a.Mode = topics.ModeActive
		return a
	}
	a.Observe, a.ShadowOutcomes, a.Divergences = p.observe, p.shadowTopic, p.divTopic
	return a
}

func (p Plan) share() int {
	switch p.Stage {
	case config.MigrationActive:
		return 100
	case config.MigrationCanary:
		return p.Percent
	}
	return 0
}

// Planner holds the plans of every migrating workflow. Update swaps them
// while the bridge runs; a handler reads them without locks.
type Planner struct {
	plans atomic.Pointer[map[string]Plan]
}

// NewPlanner builds the plans from a validated config.
func NewPlanner(m config.Migration) *Planner {
	p := &Planner{}
	p.Update(m)
	return p
}

// Update replaces the plans (a reloaded config).
func (p *Planner) Update(m config.Migration) {
	plans := make(map[string]Plan, len(m.Workflows))
	for name, w := range m.Workflows {
		obs := &migration.Observe{Event: w.ObserveEvent, Timeout: w.Timeout, Steps: map[string]migration.LegacyStep{}}
		for step, ls := range w.Steps {
			obs.Steps[step] = migration.LegacyStep{Done: ls.Done, Failed: ls.Failed, Undone: ls.Undone}
		}
		plans[name] = Plan{Workflow: name, Stage: w.Mode, Percent: w.Percent, HandoffTopic: w.HandoffTopic,
			observe: obs, shadowTopic: m.ShadowOutcomesTopic, divTopic: m.DivergencesTopic}
	}
	p.plans.Store(&plans)
}

// For returns the plan of a workflow; false when it is not migrating.
func (p *Planner) For(workflow string) (Plan, bool) {
	if p == nil {
		return Plan{}, false
	}
	pl, ok := (*p.plans.Load())[workflow]
	return pl, ok
}

// HandoffMessage is the copy of a start event that goes to the legacy
// flow: same UUID (a broker that dedupes on it drops a second hand-off),
// payload and headers, without what described the original delivery.
func HandoffMessage(msg *message.Message) *message.Message {
	out := message.NewMessage(msg.UUID, msg.Payload)
	for k, v := range msg.Metadata {
		if !dlq.IsDeliveryMetadata(k) {
			out.Metadata.Set(k, v)
		}
	}
	return out
}
