// Package contract holds what the engine (package runner) and its adapters
// share: the records of the run history (runs, tasks, attempts, artifacts,
// cache entries), the run and task states, the events, and the interfaces
// the engine consumes — Executor (runner/process, runner/docker),
// ArtifactStore (storage), GPUAllocator (gpu), History (metadata). It is a
// leaf: it imports only the standard library, so that an adapter links
// neither the engine nor the compiler (CEL, the KFP protobufs). See
// docs/architecture.md.
package contract
