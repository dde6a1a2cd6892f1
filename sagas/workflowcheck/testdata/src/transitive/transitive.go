// Package transitive checks same-package helpers reached from workflows.
package transitive

import (
	"math/rand"
	"os"
	"time"

	"github.com/dapr/durabletask-go/workflow"
)

type Order struct{ ID string }

func OrderSaga(ctx *workflow.WorkflowContext) (any, error) {
	validate(Order{})
	o := &Order{}
	o.stamp()
	_ = pick([]string{"a", "b"})
	_ = level1()
	return nil, nil
}

func validate(o Order) {
	_ = time.Now() // want `time\.Now in function validate \(called from workflow OrderSaga\): not replay-safe; use ctx\.CurrentTimeUTC\(\)`
}

func (o *Order) stamp() {
	o.ID = os.Getenv("PREFIX") // want `os\.Getenv in function Order\.stamp \(called from workflow OrderSaga\)`
}

// pick is generic; the instantiated call still resolves to this body.
func pick[T any](xs []T) T {
	return xs[rand.Intn(len(xs))] // want `rand\.Intn in function pick \(called from workflow OrderSaga\)`
}

func level1() int { return level2() }
func level2() int { return level3() }
func level3() int {
	time.Sleep(time.Millisecond) // want `time\.Sleep in function level3 \(called from workflow OrderSaga\)`
	return 0
}

// A helper reached from two workflows is reported once, for the first.
func Second(ctx *workflow.WorkflowContext) (any, error) {
	validate(Order{})
	return nil, nil
}

// Recursion terminates.
func Loop(ctx *workflow.WorkflowContext) (any, error) {
	return ping(3), nil
}

func ping(n int) int {
	if n == 0 {
		return rand.Int() // want `rand\.Int in function ping \(called from workflow Loop\)`
	}
	return pong(n - 1)
}

func pong(n int) int { return ping(n) }

// Depth is bounded: d9 is nine calls away from Deep and is not checked.
func Deep(ctx *workflow.WorkflowContext) (any, error) { d1(); return nil, nil }

func d1() { d2() }
func d2() { d3() }
func d3() { d4() }
func d4() { d5() }
func d5() { d6() }
func d6() { d7() }
func d7() { d8() }
func d8() { _ = time.Now(); d9() } // want `time\.Now in function d8 \(called from workflow Deep\)`
func d9() { _ = time.Now() }

// unused is not reachable from any workflow.
func unused() { _ = time.Now() }
