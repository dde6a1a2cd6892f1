// Package sagas is the saga runtime: a saga is a named list of steps, each a
// command to a participant (or an activity) with a timeout, retries and an
// optional compensation. Run executes a saga as a Dapr workflow: on a failed
// step it runs the compensations of the completed steps in reverse order,
// then publishes exactly one outcome.
//
// Everything in Run is deterministic (it is replayed by the engine): time
// comes from the workflow context, waiting is done with durable timers, and
// every side effect (publishing a command or an outcome) happens in the
// Publish activity.
package sagas
