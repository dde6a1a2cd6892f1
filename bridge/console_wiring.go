package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/sagabridge/sagabridge/bridge/dlqstore"
	"github.com/sagabridge/sagabridge/bridge/migrate"
	"github.com/sagabridge/sagabridge/bridge/sagaview"
	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

// What the admin API and the console read through a running bridge: saga
// instances and their histories, the dead-letter topic, the migration
// report.

// Sagas answers list and history questions about the engine's saga
// instances (nil before New has started the engine).
func (b *Bridge) Sagas() *sagaview.Service { return b.sagaView }

// progressSinks feeds several sinks; the first one's answer is returned.
type progressSinks []progressSink

func (s progressSinks) Apply(ev topics.CloudEvent) (progress.Progress, error) {
	var p progress.Progress
	var err error
	for i, sink := range s {
		q, e := sink.Apply(ev)
		if i == 0 {
			p, err = q, e
		}
	}
	return p, err
}

// rememberSink notes each instance it hears of in the engine's record,
// which is what lists instances on daprd.
type rememberSink struct{ b *Bridge }

func (r rememberSink) Apply(ev topics.CloudEvent) (progress.Progress, error) {
	p, err := progress.Decode(ev)
	if err != nil || r.b.engine == nil {
		return p, err
	}
	at := p.Since
	if p.Outcome != nil {
		at = p.Outcome.StartedAt
	}
	r.b.engine.Remember(p.InstanceID, p.Saga, at)
	return p, nil
}

// DeadLetterStore is what the admin API does on the dead-letter topic.
type DeadLetterStore interface {
	Topic() string
	Count(ctx context.Context) (uint64, error)
	List(ctx context.Context, f dlqstore.Filter, fn func(dlqstore.Item) error) error
	Get(ctx context.Context, id string) (dlqstore.Item, error)
	Purge(ctx context.Context, f dlqstore.Filter) (int, error)
	Replay(ctx context.Context, opts dlqstore.ReplayOptions) (dlqstore.ReplayResult, error)
}

// DeadLetters is the dead-letter topic on the bridge's own broker
// connection (on Kafka, a client opened per call).
func (b *Bridge) DeadLetters() DeadLetterStore { return deadLetters{b} }

type deadLetters struct{ b *Bridge }

// deadLetterOpener is a broker that opens its dead-letter topic; close
// releases what the store holds.
type deadLetterOpener interface {
	OpenDeadLetters(topic string) (st DeadLetterStore, close func() error, err error)
}

// with runs f on a store of the dead-letter topic.
func (d deadLetters) with(f func(DeadLetterStore) error) error {
	o, ok := d.b.broker.(deadLetterOpener)
	if !ok {
		return fmt.Errorf("dead letters: %w", ErrNotMeasured)
	}
	st, closeStore, err := o.OpenDeadLetters(d.b.cfg.DLQ.Topic)
	if err != nil {
		return err
	}
	defer func() { _ = closeStore() }()
	return f(st)
}

func (d deadLetters) Topic() string { return d.b.cfg.DLQ.Topic }

func (d deadLetters) Count(ctx context.Context) (n uint64, err error) {
	err = d.with(func(s DeadLetterStore) error { n, err = s.Count(ctx); return err })
	return n, err
}

func (d deadLetters) List(ctx context.Context, f dlqstore.Filter, fn func(dlqstore.Item) error) error {
	return d.with(func(s DeadLetterStore) error { return s.List(ctx, f, fn) })
}

func (d deadLetters) Get(ctx context.Context, id string) (it dlqstore.Item, err error) {
	err = d.with(func(s DeadLetterStore) error { it, err = s.Get(ctx, id); return err })
	return it, err
}

func (d deadLetters) Purge(ctx context.Context, f dlqstore.Filter) (n int, err error) {
	err = d.with(func(s DeadLetterStore) error { n, err = s.Purge(ctx, f); return err })
	return n, err
}

func (d deadLetters) Replay(ctx context.Context, opts dlqstore.ReplayOptions) (res dlqstore.ReplayResult, err error) {
	err = d.with(func(s DeadLetterStore) error { res, err = s.Replay(ctx, opts); return err })
	return res, err
}

// ReplayChecker keeps, on replay, what no route of the config would
// handle now (as `sagabridge dlq replay` does without --any-route).
func (b *Bridge) ReplayChecker() (func(dlqstore.Item) error, error) {
	check, err := ReplayCheck(b.cfg, b.sagas)
	if err != nil {
		return nil, err
	}
	return func(it dlqstore.Item) error {
		if it.Entry.Truncated != "" {
			return nil // the original is replayed from its stream, as it was
		}
		return check(it.Entry.Failure.OriginTopic, it.Entry.Payload, it.Entry.Metadata)
	}, nil
}

// outcomeReader is a broker that reads the outcomes published on a topic
// since a time.
type outcomeReader interface {
	ReadOutcomes(ctx context.Context, topic string, since time.Time) ([]topics.Outcome, error)
}

// MigrationReport summarises the migrating sagas whose instances finished
// in [since, until), read from the shadow and active outcome topics.
func (b *Bridge) MigrationReport(ctx context.Context, since, until time.Time, examples int) (migrate.Report, error) {
	r, ok := b.broker.(outcomeReader)
	if !ok {
		return migrate.Report{}, fmt.Errorf("migration report: %w", ErrNotMeasured)
	}
	var all []topics.Outcome
	for _, t := range []string{b.cfg.Migration.ShadowOutcomesTopic, b.cfg.Outcomes.Topic} {
		got, err := r.ReadOutcomes(ctx, t, since)
		if err != nil {
			return migrate.Report{}, err
		}
		all = append(all, got...)
	}
	return migrate.Summarize(all, since, until, examples), nil
}
