package sagatest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/topics"
)

// CrashMode is how the worker dies at a publish (CrashOn).
type CrashMode int

const (
	// CrashNow closes the engine while the Publish activity that just
	// handed the event to the broker is still running: its result is lost
	// with the worker, and the new worker runs the activity again.
	CrashNow CrashMode = iota
	// CrashStop stops the worker right after the event reached the broker:
	// raises and polls wait from that moment, and once the old engine has
	// recorded the step it is closed and a new one started on the same
	// database.
	CrashStop
	// CrashLostAck also makes the Publish activity fail although the broker
	// stored the event, as when a worker dies before recording the
	// activity's result: the saga sends the same event again later.
	CrashLostAck
)

// CrashOn restarts the worker once, when match first sees an event being
// published: the saga must go on from its history on the new worker,
// acting once per step however often its commands are sent.
func (e *Env) CrashOn(mode CrashMode, match func(topic string, ev topics.CloudEvent) bool) {
	var once sync.Once
	e.pub.mu.Lock()
	defer e.pub.mu.Unlock()
	e.pub.after = func(topic string, ev topics.CloudEvent) error {
		if !match(topic, ev) {
			return nil
		}
		crashed := false
		once.Do(func() {
			crashed = true
			old := e.suspend()
			e.Go(func() {
				if mode != CrashNow {
					time.Sleep(250 * time.Millisecond) // the old worker records the step
				}
				e.resume(old)
			})
		})
		if crashed && mode == CrashLostAck {
			return errors.New("worker died before recording the publish")
		}
		return nil
	}
}

// suspend takes the engine away from raises and polls, which wait for
// resume.
func (e *Env) suspend() *engine.Engine {
	e.mu.Lock()
	defer e.mu.Unlock()
	eng := e.eng
	e.eng = nil
	e.up = make(chan struct{})
	return eng
}

// resume closes the old engine and starts a new one on the same database.
func (e *Env) resume(old *engine.Engine) {
	if old != nil {
		if err := old.Close(context.Background()); err != nil {
			e.t.Logf("close engine: %v", err)
		}
	}
	if err := e.startEngine(); err != nil {
		e.t.Error(err)
	}
}
