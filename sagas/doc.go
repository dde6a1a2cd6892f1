// Package sagas is the saga runtime. A saga is a named list of steps; a step
// is a command to a participant (answered by a reply event), an activity
// call, a child saga, a wait for an external event, a parallel group of
// those, or plain workflow code (Func), each with its own timeout, retries
// and compensation. Run executes a saga inside a Dapr workflow: on a failed
// step it runs the compensations of the completed steps in reverse order,
// then publishes exactly one outcome.
//
// Sagas are written in Go (Saga, Step) or declared in YAML (package
// sagas/declarative), which compiles to the same Saga and runs as a
// workflow of its own name, pinned to the version an instance started
// with. Every instance starts with one envelope, Start: its pinned
// version, its migration assignment (sagas/migration), its trace context
// and its input. sagas/README.md teaches both.
//
// Everything Run does is deterministic, because the engine replays it:
// time comes from the workflow context, waiting is done with durable
// timers, and every side effect (publishing a command, a progress event or
// the outcome) happens in an activity. `sagabridge vet` checks workflow
// code for the usual mistakes.
package sagas
