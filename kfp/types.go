package kfp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The response types below mirror the v2beta1 messages the client reads.
// Every field is optional: the server omits zero values (an unspecified
// run state has no "state" key at all), and unknown fields are ignored so
// that newer servers can add them.

// RuntimeState is a run's or a task's state. The zero value is
// RUNTIME_STATE_UNSPECIFIED, which the server sends as an absent field.
type RuntimeState string

// Run states (docs/kfp-api.md §1.8).
const (
	StateUnspecified RuntimeState = ""
	StatePending     RuntimeState = "PENDING"
	StateRunning     RuntimeState = "RUNNING"
	StateSucceeded   RuntimeState = "SUCCEEDED"
	StateSkipped     RuntimeState = "SKIPPED"
	StateFailed      RuntimeState = "FAILED"
	StateCanceling   RuntimeState = "CANCELING"
	StateCanceled    RuntimeState = "CANCELED"
	StatePaused      RuntimeState = "PAUSED"
)

// Terminal says whether the state is final: SUCCEEDED, FAILED, SKIPPED or
// CANCELED, as the server's terminalRunStateStrings. An unspecified state
// is not terminal.
func (s RuntimeState) Terminal() bool {
	switch s {
	case StateSucceeded, StateFailed, StateSkipped, StateCanceled:
		return true
	}
	return false
}

// String is the state's name, RUNTIME_STATE_UNSPECIFIED when absent.
func (s RuntimeState) String() string {
	if s == StateUnspecified {
		return "RUNTIME_STATE_UNSPECIFIED"
	}
	return string(s)
}

// Int64 is an int64 sent as a JSON string (the proto3 JSON mapping). A
// bare number is accepted as well.
type Int64 int64

// UnmarshalJSON accepts "123", 123 and null.
func (n *Int64) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("int64 value %s: %w", b, err)
	}
	*n = Int64(v)
	return nil
}

// MarshalJSON writes the value as a string, as the server does.
func (n Int64) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(strconv.FormatInt(int64(n), 10))), nil
}

// Status is a google.rpc.Status carried inside a message.
type Status struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Health is what healthz reports, read from either the API server's answer
// or the UI's.
type Health struct {
	MultiUser     bool
	Version       string // tag_name / apiServerTagName
	CommitSHA     string
	PipelineStore string // "database" or "kubernetes" (new servers)
	// ViaUI is true when the KFP UI answered (its healthz shape).
	ViaUI bool
}

// healthz is both healthz shapes (docs/kfp-api.md §1.1).
type healthz struct {
	CommitSHA     string `json:"commit_sha"`
	TagName       string `json:"tag_name"`
	MultiUser     *bool  `json:"multi_user"`
	PipelineStore string `json:"pipeline_store"`

	APIServerReady      *bool  `json:"apiServerReady"`
	APIServerCommitHash string `json:"apiServerCommitHash"`
	APIServerTagName    string `json:"apiServerTagName"`
	APIServerMultiUser  *bool  `json:"apiServerMultiUser"`
	UIPipelineStore     string `json:"pipelineStore"`
}

// Pipeline is a pipeline as the server returns it.
type Pipeline struct {
	PipelineID  string            `json:"pipeline_id,omitempty"`
	Name        string            `json:"name,omitempty"`
	DisplayName string            `json:"display_name,omitempty"`
	Description string            `json:"description,omitempty"`
	CreatedAt   time.Time         `json:"created_at,omitzero"`
	Namespace   string            `json:"namespace,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Error       *Status           `json:"error,omitempty"`
}

// PipelineVersion is a pipeline version as the server returns it.
type PipelineVersion struct {
	PipelineID        string            `json:"pipeline_id,omitempty"`
	PipelineVersionID string            `json:"pipeline_version_id,omitempty"`
	Name              string            `json:"name,omitempty"`
	DisplayName       string            `json:"display_name,omitempty"`
	Description       string            `json:"description,omitempty"`
	CreatedAt         time.Time         `json:"created_at,omitzero"`
	CodeSourceURL     string            `json:"code_source_url,omitempty"`
	PipelineSpec      map[string]any    `json:"pipeline_spec,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
	Error             *Status           `json:"error,omitempty"`
}

// Experiment is an experiment as the server returns it.
type Experiment struct {
	ExperimentID     string    `json:"experiment_id,omitempty"`
	DisplayName      string    `json:"display_name,omitempty"`
	Description      string    `json:"description,omitempty"`
	CreatedAt        time.Time `json:"created_at,omitzero"`
	Namespace        string    `json:"namespace,omitempty"`
	StorageState     string    `json:"storage_state,omitempty"`
	LastRunCreatedAt time.Time `json:"last_run_created_at,omitzero"`
}

// PipelineVersionReference points a run at a stored pipeline version; an
// empty version id means the pipeline's latest version.
type PipelineVersionReference struct {
	PipelineID        string `json:"pipeline_id,omitempty"`
	PipelineVersionID string `json:"pipeline_version_id,omitempty"`
}

// RuntimeConfig is a run's parameters and pipeline root.
type RuntimeConfig struct {
	Parameters   map[string]any `json:"parameters,omitempty"`
	PipelineRoot string         `json:"pipeline_root,omitempty"`
}

// Run is a run as the server returns it.
type Run struct {
	RunID                    string                    `json:"run_id,omitempty"`
	ExperimentID             string                    `json:"experiment_id,omitempty"`
	DisplayName              string                    `json:"display_name,omitempty"`
	Description              string                    `json:"description,omitempty"`
	StorageState             string                    `json:"storage_state,omitempty"`
	ServiceAccount           string                    `json:"service_account,omitempty"`
	State                    RuntimeState              `json:"state,omitempty"`
	StateHistory             []StateChange             `json:"state_history,omitempty"`
	CreatedAt                time.Time                 `json:"created_at,omitzero"`
	ScheduledAt              time.Time                 `json:"scheduled_at,omitzero"`
	FinishedAt               time.Time                 `json:"finished_at,omitzero"`
	RuntimeConfig            *RuntimeConfig            `json:"runtime_config,omitempty"`
	PipelineSpec             map[string]any            `json:"pipeline_spec,omitempty"`
	PipelineVersionReference *PipelineVersionReference `json:"pipeline_version_reference,omitempty"`
	RecurringRunID           string                    `json:"recurring_run_id,omitempty"`
	RunDetails               *RunDetails               `json:"run_details,omitempty"`
	// Error is set when the server could not convert the run record.
	Error *Status `json:"error,omitempty"`
}

// Finished says whether FinishedAt holds a real time: unfinished runs
// report the Unix epoch.
func (r *Run) Finished() bool { return r.FinishedAt.After(time.Unix(0, 0)) }

// StateChange is one entry of a state history.
type StateChange struct {
	UpdateTime time.Time    `json:"update_time,omitzero"`
	State      RuntimeState `json:"state,omitempty"`
	Error      *Status      `json:"error,omitempty"`
}

// RunDetails is the live view of a run, built from Argo node statuses. It
// is absent until the persistence agent has reported.
type RunDetails struct {
	PipelineContextID    Int64        `json:"pipeline_context_id,omitempty"`
	PipelineRunContextID Int64        `json:"pipeline_run_context_id,omitempty"`
	TaskDetails          []TaskDetail `json:"task_details,omitempty"`
}

// TaskDetail is one Argo node of a run: drivers, executors and DAGs
// appear, named by their Argo display names.
type TaskDetail struct {
	RunID        string                  `json:"run_id,omitempty"`
	TaskID       string                  `json:"task_id,omitempty"`
	DisplayName  string                  `json:"display_name,omitempty"`
	CreateTime   time.Time               `json:"create_time,omitzero"`
	StartTime    time.Time               `json:"start_time,omitzero"`
	EndTime      time.Time               `json:"end_time,omitzero"`
	State        RuntimeState            `json:"state,omitempty"`
	ExecutionID  Int64                   `json:"execution_id,omitempty"`
	ParentTaskID string                  `json:"parent_task_id,omitempty"`
	StateHistory []StateChange           `json:"state_history,omitempty"`
	ChildTasks   []ChildTask             `json:"child_tasks,omitempty"`
	Inputs       map[string]ArtifactList `json:"inputs,omitempty"`
	Outputs      map[string]ArtifactList `json:"outputs,omitempty"`
	Error        *Status                 `json:"error,omitempty"`
}

// ChildTask names a pod or a child task of a task.
type ChildTask struct {
	TaskID  string `json:"task_id,omitempty"`
	PodName string `json:"pod_name,omitempty"`
}

// ArtifactList is the artifact ids of one task input or output.
type ArtifactList struct {
	ArtifactIDs []Int64 `json:"artifact_ids,omitempty"`
}
