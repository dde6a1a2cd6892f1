// Package maprange checks the map-range rule.
package maprange

import (
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/dapr/durabletask-go/workflow"
)

func Ship(ctx workflow.ActivityContext) (any, error) { return nil, nil }

func Saga(ctx *workflow.WorkflowContext) (any, error) {
	items := map[string]int{"a": 1, "b": 2}

	for sku := range items { // want `range over map in workflow function Saga: iteration order is random and the loop schedules work; range over slices\.Sorted\(maps\.Keys\(m\)\)`
		_ = ctx.CallActivity(Ship, workflow.WithActivityInput(sku))
	}
	for range items { // want `range over map in workflow function Saga: iteration order is random and the loop schedules work`
		_ = ctx.CreateTimer(time.Second)
	}
	for k := range items { // want `range over map in workflow function Saga: iteration order is random and the loop schedules work`
		_ = ctx.WaitForExternalEvent(k, time.Second)
	}
	for k := range items { // want `range over map .* schedules work`
		_ = ctx.CallChildWorkflow(Saga, workflow.WithChildWorkflowInput(k))
	}
	for k := range items { // want `range over map .* schedules work`
		ship(ctx, k) // passing ctx to a helper may schedule work
	}
	for k := range maps.Keys(items) { // want `range over map .* schedules work`
		_ = ctx.CallActivity(Ship, workflow.WithActivityInput(k))
	}

	var out []string
	for k := range items { // want `range over map in workflow function Saga: iteration order is random and the loop appends; sort the slice afterwards`
		out = append(out, k)
	}

	// Appending and then sorting is the deterministic idiom.
	var keys []string
	for k := range items {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var keys2 []string
	for k := range items {
		keys2 = append(keys2, k)
	}
	sort.Sort(sort.StringSlice(keys2))

	// Read-only loops are fine.
	sum := 0
	for _, v := range items {
		sum += v
	}
	seen := map[string]bool{}
	for k, v := range items {
		if v > 1 {
			seen[k] = true
		}
	}
	_ = ctx.ID() // non-scheduling ctx methods are fine in a loop too
	for range items {
		_ = ctx.IsReplaying()
	}

	// An activity literal inside the loop may append freely; the
	// CallActivity call itself is what gets the loop reported.
	for k := range items { // want `range over map .* schedules work`
		_ = ctx.CallActivity(func(a workflow.ActivityContext) (any, error) {
			var xs []string
			xs = append(xs, k)
			return xs, nil
		})
	}

	// Sorted keys: not a map range.
	for _, k := range slices.Sorted(maps.Keys(items)) {
		_ = ctx.CallActivity(Ship, workflow.WithActivityInput(k))
	}
	return out, nil
}

func ship(ctx *workflow.WorkflowContext, sku string) {
	_ = ctx.CallActivity(Ship, workflow.WithActivityInput(sku))
}

// Map ranges outside workflow code are not reported.
func plain(items map[string]int) (out []string) {
	for k := range items {
		out = append(out, k)
	}
	return out
}
