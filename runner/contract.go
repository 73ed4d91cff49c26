// Code that moved to package contract keeps its runner names, so that the
// engine reads as before; adapters (stores, executors, the GPU allocator,
// the history) import contract and never the engine.

package runner

import (
	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/internal/procfs"
)

// Records, interfaces and states shared with the adapters.
type (
	History            = contract.History
	CacheDropper       = contract.CacheDropper
	RunRecord          = contract.RunRecord
	TaskRecord         = contract.TaskRecord
	OutputsRecord      = contract.OutputsRecord
	ArtifactRecord     = contract.ArtifactRecord
	AttemptRecord      = contract.AttemptRecord
	Phase              = contract.Phase
	CacheEntry         = contract.CacheEntry
	State              = contract.State
	Executor           = contract.Executor
	ExecutorProperties = contract.ExecutorProperties
	ExecTask           = contract.ExecTask
	Mount              = contract.Mount
	ExecResult         = contract.ExecResult
	Collector          = contract.Collector
	ImageResolver      = contract.ImageResolver
	PythonEnv          = contract.PythonEnv
	GPURequest         = contract.GPURequest
	GPULease           = contract.GPULease
	ExtraFile          = contract.ExtraFile
	GPUAllocator       = contract.GPUAllocator
	GPUSample          = contract.GPUSample
	ArtifactStore      = contract.ArtifactStore
	ArtifactInfo       = contract.ArtifactInfo
	Event              = contract.Event
	BatchSaver         = contract.BatchSaver
)

// Run and task states.
const (
	Pending   = contract.Pending
	Running   = contract.Running
	Succeeded = contract.Succeeded
	Failed    = contract.Failed
	Skipped   = contract.Skipped
	Cached    = contract.Cached
	Canceled  = contract.Canceled
)

// Errors shared with the adapters.
var (
	ErrNotCollectable   = contract.ErrNotCollectable
	ErrArtifactNotFound = contract.ErrArtifactNotFound
	ErrArtifactExists   = contract.ErrArtifactExists
	ErrDigestMismatch   = contract.ErrDigestMismatch
)

// DisplayName turns a task path into what people read (contract.DisplayName).
func DisplayName(path string) string { return contract.DisplayName(path) }

// KillOrphans kills the step processes a dead mlpipe left behind for a run
// (procfs.KillOrphans).
func KillOrphans(runID string) int { return procfs.KillOrphans(runID) }
