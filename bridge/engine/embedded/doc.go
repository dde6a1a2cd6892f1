// Package embedded runs a durabletask-go task hub inside the sagabridge
// process: the SQLite backend in a file, served over gRPC on a loopback port,
// so the Dapr go-sdk workflow worker and client connect to it exactly as they
// would to a daprd sidecar.
//
// Three things differ from the stock hub, each for a reason measured here:
//
//   - The workers are woken when work is written instead of polling with a
//     backoff that grows to 5 s (the stock hub ran 4 sagas/s one at a time).
//   - Locks left by a crashed process are released at start. The process
//     holds an exclusive lock on the database file, so any lock found there
//     belongs to a dead process; the stock hub waits 2 minutes for them.
//   - Raising an event on an instance that does not exist fails with "no such
//     instance exists", as daprd does; the stock SQLite backend stores such
//     an event where no orchestration ever reads it.
package embedded
