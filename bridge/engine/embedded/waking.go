package embedded

import (
	"context"
	"errors"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
)

// wakingBackend decorates a backend so that GetOrchestrationWorkItem and
// GetActivityWorkItem block until work may exist, instead of returning
// ErrNoWorkItems and letting the stock worker back off for up to 5 s.
//
// Every write that can create work signals both waiters. A waiter also wakes
// every idle interval, which covers durable timers and abandoned items whose
// visibility time passes without any write.
type wakingBackend struct {
	backend.Backend
	orch chan struct{}
	act  chan struct{}
	idle time.Duration
}

func newWakingBackend(be backend.Backend, idle time.Duration) *wakingBackend {
	return &wakingBackend{
		Backend: be,
		orch:    make(chan struct{}, 1),
		act:     make(chan struct{}, 1),
		idle:    idle,
	}
}

func (b *wakingBackend) notify() {
	select {
	case b.orch <- struct{}{}:
	default:
	}
	select {
	case b.act <- struct{}{}:
	default:
	}
}

func (b *wakingBackend) CreateOrchestrationInstance(ctx context.Context, e *backend.HistoryEvent, opts ...backend.OrchestrationIdReusePolicyOptions) error {
	err := b.Backend.CreateOrchestrationInstance(ctx, e, opts...)
	if err == nil {
		b.notify()
	}
	return err
}

// AddNewOrchestrationEvent refuses events for instances that do not exist,
// so the caller can retry later instead of losing the event.
func (b *wakingBackend) AddNewOrchestrationEvent(ctx context.Context, id api.InstanceID, e *backend.HistoryEvent) error {
	if _, err := b.Backend.GetOrchestrationMetadata(ctx, id); err != nil {
		return err // api.ErrInstanceNotFound for a missing instance
	}
	err := b.Backend.AddNewOrchestrationEvent(ctx, id, e)
	if err == nil {
		b.notify()
	}
	return err
}

func (b *wakingBackend) CompleteOrchestrationWorkItem(ctx context.Context, wi *backend.OrchestrationWorkItem) error {
	err := b.Backend.CompleteOrchestrationWorkItem(ctx, wi)
	b.notify()
	return err
}

func (b *wakingBackend) AbandonOrchestrationWorkItem(ctx context.Context, wi *backend.OrchestrationWorkItem) error {
	err := b.Backend.AbandonOrchestrationWorkItem(ctx, wi)
	b.notify()
	return err
}

func (b *wakingBackend) CompleteActivityWorkItem(ctx context.Context, wi *backend.ActivityWorkItem) error {
	err := b.Backend.CompleteActivityWorkItem(ctx, wi)
	b.notify()
	return err
}

func (b *wakingBackend) AbandonActivityWorkItem(ctx context.Context, wi *backend.ActivityWorkItem) error {
	err := b.Backend.AbandonActivityWorkItem(ctx, wi)
	b.notify()
	return err
}

func (b *wakingBackend) GetOrchestrationWorkItem(ctx context.Context) (*backend.OrchestrationWorkItem, error) {
	for {
		wi, err := b.Backend.GetOrchestrationWorkItem(ctx)
		if !errors.Is(err, backend.ErrNoWorkItems) {
			return wi, err
		}
		if err := b.wait(ctx, b.orch); err != nil {
			return nil, err
		}
	}
}

func (b *wakingBackend) GetActivityWorkItem(ctx context.Context) (*backend.ActivityWorkItem, error) {
	for {
		wi, err := b.Backend.GetActivityWorkItem(ctx)
		if !errors.Is(err, backend.ErrNoWorkItems) {
			return wi, err
		}
		if err := b.wait(ctx, b.act); err != nil {
			return nil, err
		}
	}
}

func (b *wakingBackend) wait(ctx context.Context, ch <-chan struct{}) error {
	t := time.NewTimer(b.idle)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
