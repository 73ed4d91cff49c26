package contract

import (
	"context"
	"time"
)

// History is the run history the runner writes as it goes: runs, tasks,
// attempts, artifacts, lineage and the cache index. metadata.Store is the
// SQLite implementation.
type History interface {
	CreateRun(ctx context.Context, r *RunRecord) error
	UpdateRun(ctx context.Context, r *RunRecord) error
	Run(ctx context.Context, id string) (*RunRecord, error)
	SaveTask(ctx context.Context, t *TaskRecord) error
	Tasks(ctx context.Context, runID string) ([]*TaskRecord, error)
	SaveAttempt(ctx context.Context, a *AttemptRecord) error
	LookupCache(ctx context.Context, key string) (*CacheEntry, error)
}

// CacheDropper is implemented by histories that can forget cache entries:
// when a cached output fails its verification (changed outside mlpipe), the
// entries pointing at it are dropped so that the next run re-runs the
// producer instead of failing at the same place.
type CacheDropper interface {
	DropCacheFor(ctx context.Context, uri string) (int, error)
}

// RunRecord is one run.
type RunRecord struct {
	ID           string         `json:"run_id"`
	Pipeline     string         `json:"pipeline"`
	State        State          `json:"state"`
	StartedAt    time.Time      `json:"started_at"`
	FinishedAt   time.Time      `json:"finished_at"`
	Params       map[string]any `json:"parameters,omitempty"`
	Source       string         `json:"source,omitempty"`  // the file the user ran
	IRPath       string         `json:"ir_path,omitempty"` // the IR saved with the run
	PipelineRoot string         `json:"pipeline_root,omitempty"`
	Executor     string         `json:"executor,omitempty"`
	PID          int            `json:"pid,omitempty"`
	Host         string         `json:"host,omitempty"`
	Error        string         `json:"error,omitempty"`
	Outputs      map[string]any `json:"outputs,omitempty"`
}

// TaskRecord is one executor task of a run (loop iterations are separate
// tasks), or a group.
type TaskRecord struct {
	RunID      string                      `json:"-"`
	Path       string                      `json:"path"`
	Name       string                      `json:"name"`
	Component  string                      `json:"component,omitempty"`
	Kind       string                      `json:"kind,omitempty"` // container, importer, dag
	State      State                       `json:"state"`
	Attempts   int                         `json:"attempts"`
	StartedAt  time.Time                   `json:"started_at"`
	FinishedAt time.Time                   `json:"finished_at"`
	CacheKey   string                      `json:"cache_key,omitempty"`
	CachedFrom string                      `json:"cached_from,omitempty"`
	Outputs    OutputsRecord               `json:"outputs"`
	Inputs     map[string][]ArtifactRecord `json:"-"`
	// Attempt and Cache, when set, are saved with the task in one write:
	// the last attempt, and the cache entry of a successful task.
	Attempt  *AttemptRecord `json:"-"`
	Cache    *CacheEntry    `json:"-"`
	GPUs     []string       `json:"gpus"`
	Error    string         `json:"error,omitempty"`
	ExitCode int            `json:"exit_code,omitempty"`
}

// OutputsRecord holds a task's outputs.
type OutputsRecord struct {
	Parameters map[string]any              `json:"parameters"`
	Artifacts  map[string][]ArtifactRecord `json:"artifacts"`
}

// ArtifactRecord is one artifact.
type ArtifactRecord struct {
	Name          string         `json:"-"`
	URI           string         `json:"uri"`
	Type          string         `json:"type,omitempty"`
	SchemaVersion string         `json:"-"`
	Digest        string         `json:"digest"`
	Size          int64          `json:"size"`
	Dir           bool           `json:"dir,omitempty"`
	Metadata      map[string]any `json:"metadata"`
}

// AttemptRecord is one attempt of a task.
type AttemptRecord struct {
	RunID       string      `json:"-"`
	TaskPath    string      `json:"-"`
	Attempt     int         `json:"attempt"`
	StartedAt   time.Time   `json:"started_at"`
	FinishedAt  time.Time   `json:"finished_at"`
	ExitCode    int         `json:"exit_code"`
	OOMKilled   bool        `json:"oom_killed,omitempty"`
	Error       string      `json:"error,omitempty"`
	Executor    string      `json:"executor,omitempty"`
	Image       string      `json:"image,omitempty"`
	ImageDigest string      `json:"image_digest,omitempty"`
	GPUs        []string    `json:"gpus,omitempty"`
	Phases      []Phase     `json:"phases,omitempty"`
	GPUSamples  []GPUSample `json:"gpu_samples,omitempty"`
	LogPath     string      `json:"log,omitempty"`
}

// Phase is one timed phase of an attempt.
type Phase struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Duration of the phase.
func (p Phase) Duration() time.Duration { return p.End.Sub(p.Start) }

// CacheEntry is what a cached execution left: its outputs.
type CacheEntry struct {
	Key       string
	RunID     string
	TaskPath  string
	Outputs   OutputsRecord
	CreatedAt time.Time
}

// BatchSaver is implemented by histories that can save many records in one
// transaction (metadata.Store); the writer then commits whatever queued up
// while the previous commit ran.
type BatchSaver interface {
	SaveBatch(ctx context.Context, tasks []*TaskRecord, attempts []*AttemptRecord) error
}
