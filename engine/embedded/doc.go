// Package embedded runs a durabletask-go task hub inside the sagabridge
// process, served over gRPC on in-memory connections (Hub.Dial), so the Dapr
// workflow worker and client talk to it exactly as they would to a
// daprd sidecar, without a port or system calls.
//
// The hub keeps durabletask's own workers and gRPC executor, and replaces
// the stock SQLite backend with the store package, for reasons measured
// here (bench: 46 sagas/s one at a time and 17/s with 128 in flight on the
// stock backend, 14-20 CPU-seconds per 1,000 sagas):
//
//   - The process holds an exclusive lock on the database file, so the
//     store keeps its work queues and locks in memory, rebuilt from the
//     tables at start. Workers block until work exists instead of polling
//     (the stock hub's backoff grows to 5 s), and fetching work never scans
//     the instances table (the stock backend scans every instance, finished
//     ones included, on every fetch).
//   - Work a crashed process left unfinished is ready again as soon as the
//     hub starts; the stock backend waits for its 2-minute lock timeout.
//   - Statements are prepared once, writes are group-committed, checkpoints
//     run off the writer's path, and running instances' histories are
//     cached, so most work items read nothing back.
//   - Raising an event on an instance that does not exist fails with "no
//     such instance exists", as daprd does; the stock SQLite backend stores
//     such an event where no orchestration ever reads it.
package embedded
