// Package sagatest runs sagas in a unit test, the way Temporal's
// testsuite runs workflows: on the real workflow engine (the embedded
// durabletask hub and its SQLite store, in the test's process), with an
// in-memory broker and scripted participants in place of NATS or Kafka and
// the services.
//
// An Env registers Go sagas (Options.Sagas, or any workflow function in
// Options.Workflows) and declarative ones (Options.Definitions), starts
// instances and waits for their outcome. Every command a saga publishes
// goes to its participant's script (OnCommand, Participant), which answers
// OK, Failed or never (NoReply); the Env raises the reply on the instance
// as a worker's raise route would. Commands nobody scripted are answered
// OK.
//
// Timers run on the Env's clock, which moves with the wall clock and
// jumps when told: FireTimer waits until the saga waits on a timer (a
// step's timeout, a backoff) and moves the clock to it, so a test of an
// hour-long timeout takes milliseconds. Assertions read what the saga did:
// Commands and Compensations (in order, "type#attempt"), Outcome (the
// status, compensated steps, error), Outcomes and Events (what reached the
// broker). CrashOn restarts the worker at a chosen publish, to test that a
// saga carries on from its history.
//
// A test and the worker's main register the same sagas, so the test runs
// what production runs; docs/go-sagas.md shows both.
package sagatest
