// Package runner is mlpipe's DAG engine: it executes KFP v2 IR on one
// machine with the semantics of a KFP cluster (docs/kfp-semantics.md §2–§5;
// a bare "§N" in this package's comments is a section of that file).
//
// It resolves task inputs, placeholders, conditions (CEL), loops with
// parallelism limits, fan-in, exit handlers, nested DAGs and OneOf outputs;
// it caches results under a content-addressed key, retries with backoff,
// schedules ready tasks in parallel against CPU, memory and GPU budgets
// (longest remaining path first), records everything in the run history and
// resumes interrupted runs.
//
// The package declares the interfaces it consumes — Executor (runner/process,
// runner/docker), ArtifactStore (storage/), GPUAllocator (gpu/) and History
// (metadata/) — and never imports Docker, minio-go, NVML or SQLite itself.
package runner
