// Package clean is a replay-safe workflow: no diagnostics expected.
package clean

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dapr/durabletask-go/workflow"
)

type Order struct {
	ID    string
	Items map[string]int
}

func OrderSaga(ctx *workflow.WorkflowContext) (any, error) {
	var order Order
	if err := ctx.GetInput(&order); err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	deadline := ctx.CurrentTimeUTC().Add(time.Hour)

	// Deterministic iteration over the items.
	for _, sku := range slices.Sorted(maps.Keys(order.Items)) {
		if err := ctx.CallActivity(Reserve, workflow.WithActivityInput(sku)).Await(nil); err != nil {
			return nil, compensate(ctx, order)
		}
	}

	// Read-only map range: counting is order-independent.
	total := 0
	for _, n := range order.Items {
		total += n
	}

	// Collect-then-sort idiom.
	var skus []string
	for sku := range order.Items {
		skus = append(skus, sku)
	}
	sort.Strings(skus)

	if err := ctx.CreateTimer(time.Minute).Await(nil); err != nil {
		return nil, err
	}
	if err := ctx.WaitForExternalEvent("approved", deadline.Sub(ctx.CurrentTimeUTC())).Await(nil); err != nil {
		return nil, errors.Join(err, errors.New("not approved"))
	}
	return strings.Join(skus, ",") + fmt.Sprint(total), nil
}

func compensate(ctx *workflow.WorkflowContext, o Order) error {
	return ctx.CallActivity(Release, workflow.WithActivityInput(o.ID)).Await(nil)
}

func Reserve(ctx workflow.ActivityContext) (any, error) { return time.Now(), nil }
func Release(ctx workflow.ActivityContext) (any, error) { return nil, nil }
