package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/internal/statedir"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/platform"
	"github.com/mlpipe/mlpipe/pyfunc"
)

// Options configure one run.
type Options struct {
	IR       *kfpir.IR
	Params   map[string]any // resolved run parameters (kfpir.ResolveParams)
	RunID    string         // generated when empty
	Resume   bool           // continue run RunID
	Source   string         // what the user ran, for the history
	Executor Executor
	Store    ArtifactStore
	GPUs     GPUAllocator // nil: tasks that need GPUs fail before the run starts
	// GPUUnavailable says why GPUs is nil (e.g. "libnvidia-ml.so.1 not found").
	GPUUnavailable string
	History        History
	StateDir       string // task directories go to StateDir/runs/<run>/

	MaxParallel int     // parallel tasks (default: number of CPUs)
	CPUs        float64 // CPU budget (default: number of CPUs)
	Memory      int64   // memory budget in bytes (default: physical memory)
	KeepGoing   bool    // let independent branches finish after a failure
	NoCache     bool    // do not look up the cache
	// NoPythonPrepare runs Python function components as written: their
	// pip prologue installs their packages in every step.
	NoPythonPrepare bool
	// KeepPythonPrologue runs a prepared component's pip prologue anyway
	// (it then finds every package installed); by default the step starts
	// at its program.
	KeepPythonPrologue bool
	// Platform says where the local stand-ins for the cluster objects the
	// IR's kubernetes platform spec names are (secrets, config maps, PVCs).
	Platform platform.Sources
	// Target, for benchmarks, names one task (by display name; loop
	// iterations included): it always runs (no cache), the tasks it needs
	// may come from the cache, and the tasks after it are skipped.
	Target string

	// Events receives every task and run state change (synchronously, from
	// several goroutines one at a time).
	Events func(Event)
	// Output receives the tasks' stdout and stderr, line by line, prefixed
	// with the task name (nil: logs go to the task log files only).
	Output io.Writer
	Logger *slog.Logger
	// GracePeriod between SIGTERM and SIGKILL on cancel (executors).
	GracePeriod time.Duration

	// MaxParamBytes is the largest output parameter a step may write
	// (0: DefaultMaxParamBytes); a larger one fails the task.
	MaxParamBytes int64
	// MaxLogBytes is how much of an attempt's output its log keeps (0:
	// DefaultMaxLogBytes; negative: no limit); the rest is dropped with a
	// marker.
	MaxLogBytes int64
}

// Default limits on what a step writes.
const (
	DefaultMaxParamBytes = 4 << 20
	DefaultMaxLogBytes   = 256 << 20
)

func (r *run) paramLimit() int64 {
	if r.opts.MaxParamBytes > 0 {
		return r.opts.MaxParamBytes
	}
	return DefaultMaxParamBytes
}

// executorOutputLimit bounds the executor output file, which holds output
// parameters (each also bounded by paramLimit) and artifact metadata.
func (r *run) executorOutputLimit() int64 {
	return 4*r.paramLimit() + 16<<20
}

func (r *run) logLimit() int64 {
	switch {
	case r.opts.MaxLogBytes > 0:
		return r.opts.MaxLogBytes
	case r.opts.MaxLogBytes < 0:
		return 0
	}
	return DefaultMaxLogBytes
}

// Result is how a run ended.
type Result struct {
	RunID   string
	State   State
	Outputs map[string]any
	Message string
}

// RunError is returned when a run ends in a failed or cancelled state.
type RunError struct {
	RunID   string
	State   State
	Message string
}

func (e *RunError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("run %s %s: %s", e.RunID, strings.ToLower(string(e.State)), e.Message)
	}
	return fmt.Sprintf("run %s %s", e.RunID, strings.ToLower(string(e.State)))
}

// ExitCode maps the state to mlpipe's exit codes: 3 failed, 130 cancelled.
func (e *RunError) ExitCode() int {
	if e.State == Canceled {
		return 130
	}
	return 3
}

// PreflightError is a pipeline that cannot run on this machine at all (a
// GPU task without GPUs, a task larger than the machine).
type PreflightError struct{ Problems []string }

func (e *PreflightError) Error() string {
	return "the pipeline cannot run here:\n  " + strings.Join(e.Problems, "\n  ")
}

// InvalidInput marks preflight problems as invalid input (exit code 2).
func (e *PreflightError) InvalidInput() bool { return true }

type run struct {
	opts     Options
	ir       *kfpir.IR
	runID    string
	pipeline string
	runDir   string
	runRoot  string
	created  time.Time
	log      *slog.Logger
	sched    *scheduler
	hw       *historyWriter
	failFlag atomic.Bool
	prior    map[string]*TaskRecord // resume: tasks of the earlier attempt of this run

	// Each of these owns its lock.
	events    eventSink               // opts.Events, one event at a time
	out       terminal                // opts.Output, whole lines (output.go)
	published publications            // what tasks store outside their directories (redirect.go)
	inplace   inplaceGuard            // fingerprints of local inputs (inplace.go)
	compMaps  memo[map[string]any]    // component specs as values, for cache keys
	heightsOf memo[map[string]int]    // per DAG component: longest path from each task
	images    memo[string]            // image → digest, resolved once per run
	pyenvs    memo[PythonEnv]         // image and pip installs → prepared environment
	pyfuncs   memo[*pyfunc.Component] // executor label → its Python function component, or nil
	// platform is the IR's kubernetes platform spec (platform.go);
	// platformNoted the executor labels whose mapping was shown.
	platform      *platform.Spec
	platformNoted sync.Map
}

// NewRunID returns a fresh run id: a sortable timestamp and random suffix.
func NewRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Run executes the pipeline to completion and records it in the history.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.IR == nil || opts.Executor == nil || opts.Store == nil || opts.History == nil {
		return nil, errors.New("runner: IR, Executor, Store and History are required")
	}
	opts = withDefaultOptions(opts)
	r := &run{opts: opts, ir: opts.IR, pipeline: opts.IR.Spec.GetPipelineInfo().GetName(), log: opts.Logger,
		events: eventSink{fn: opts.Events}, out: terminal{w: opts.Output}}
	r.sched = newScheduler(opts.MaxParallel, opts.CPUs, opts.Memory)
	if err := r.preflight(); err != nil {
		return nil, err
	}
	hctx := context.WithoutCancel(ctx)
	var rec *RunRecord
	var err error
	if opts.Resume {
		rec, err = r.resumeRecord(hctx)
	} else {
		rec, err = r.newRecord()
	}
	if err != nil {
		return nil, err
	}
	if err := r.start(hctx, rec); err != nil {
		return nil, err
	}
	params := maps.Clone(opts.Params)
	if params == nil {
		params = map[string]any{}
	}
	root := &dagRun{r: r, comp: r.ir.Spec.GetRoot(), compName: "root", params: dagParams(r.ir.Spec.GetRoot(), params), artifacts: map[string][]*RuntimeArtifact{}}
	state, results := root.execute(ctx)
	r.hw.close()
	return r.end(ctx, hctx, rec, state, results)
}

// withDefaultOptions fills in what the caller left unset.
func withDefaultOptions(opts Options) Options {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxParallel <= 0 {
		opts.MaxParallel = runtime.NumCPU()
	}
	if opts.CPUs <= 0 {
		opts.CPUs = float64(runtime.NumCPU())
	}
	if opts.Memory <= 0 {
		opts.Memory = physicalMemory()
	}
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = 10 * time.Second
	}
	return opts
}

// resumeRecord takes up an earlier run (opts.RunID): refuses one still
// running or already succeeded, kills what its dead mlpipe left behind,
// recovers its journal, and remembers its tasks (r.prior).
func (r *run) resumeRecord(hctx context.Context) (*RunRecord, error) {
	opts := r.opts
	prev, err := opts.History.Run(hctx, opts.RunID)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", opts.RunID, err)
	}
	if prev.State == Running && prev.PID > 0 && prev.PID != os.Getpid() && processAlive(prev.PID) {
		return nil, &PreflightError{Problems: []string{fmt.Sprintf("run %s is still running (pid %d): it cannot be resumed until it ends", prev.ID, prev.PID)}}
	}
	if prev.State == Succeeded {
		return nil, &PreflightError{Problems: []string{fmt.Sprintf("run %s already succeeded; nothing to resume", prev.ID)}}
	}
	// Steps the dead run left behind must not race the resumed ones.
	if host, _ := os.Hostname(); prev.Host == "" || prev.Host == host {
		if n := KillOrphans(prev.ID); n > 0 {
			r.log.Warn("killed processes left by the interrupted run", "run_id", prev.ID, "count", n)
		}
	}
	// What the dead run's journal holds and the database missed; what it
	// left running is closed.
	if _, err := Recover(hctx, opts.History, opts.StateDir, prev); err != nil {
		return nil, fmt.Errorf("resume %s: %w", prev.ID, err)
	}
	tasks, err := opts.History.Tasks(hctx, prev.ID)
	if err != nil {
		return nil, err
	}
	r.prior = map[string]*TaskRecord{}
	for _, t := range tasks {
		r.prior[t.Path] = t
	}
	r.runID = prev.ID
	r.created = prev.StartedAt
	return prev, nil
}

// newRecord names a new run.
func (r *run) newRecord() (*RunRecord, error) {
	r.runID = r.opts.RunID
	if r.runID == "" {
		r.runID = NewRunID()
	}
	if !runIDPattern.MatchString(r.runID) {
		return nil, &PreflightError{Problems: []string{fmt.Sprintf("run id %q: use letters, digits, '.', '_' and '-'", r.runID)}}
	}
	r.created = time.Now()
	return &RunRecord{ID: r.runID, StartedAt: r.created, Params: r.opts.Params, Source: r.opts.Source}, nil
}

// start makes the run's directory, saves its IR (a new run), records it as
// running and starts the history writer.
func (r *run) start(hctx context.Context, rec *RunRecord) error {
	opts := r.opts
	r.runDir = statedir.Layout{Root: opts.StateDir}.Run(r.runID)
	r.runRoot = opts.Store.RunRoot(r.pipeline, r.runID)
	if err := os.MkdirAll(r.runDir, 0o755); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	irPath := filepath.Join(r.runDir, "pipeline.json")
	if !opts.Resume {
		// The document as loaded, so that a resume also keeps the fields
		// newer than the pinned proto (cacheKey, literals, TASK_CONFIG).
		var b []byte
		var err error
		if opts.IR.Raw != nil {
			b, err = json.Marshal(opts.IR.Raw)
		} else {
			b, err = kfpir.Marshal(opts.IR.Spec, kfpir.JSON)
		}
		if err != nil {
			return fmt.Errorf("encode the run's IR: %w", err)
		}
		if err := writeFileAtomic(irPath, b); err != nil {
			return fmt.Errorf("save the run's IR: %w", err)
		}
	}
	host, _ := os.Hostname()
	rec.Pipeline = r.pipeline
	rec.State = Running
	rec.FinishedAt = time.Time{}
	rec.IRPath = irPath
	rec.PipelineRoot = r.runRoot
	rec.Executor = opts.Executor.Name()
	rec.PID = os.Getpid()
	rec.Host = host
	rec.Error = ""
	if opts.Resume {
		if err := opts.History.UpdateRun(hctx, rec); err != nil {
			return err
		}
	} else if err := opts.History.CreateRun(hctx, rec); err != nil {
		return err
	}
	r.hw = newHistoryWriter(opts.History, r.log, r.runDir)
	r.emit(Event{State: Running, Message: r.pipeline})
	return nil
}

// end records how the run ended, with its outputs, and says it.
func (r *run) end(ctx, hctx context.Context, rec *RunRecord, state State, results map[string]*taskResult) (*Result, error) {
	out, oerr := dagOutputs(r.ir.Spec.GetRoot(), results)
	msg := ""
	if state == Failed {
		msg = firstFailure(results)
	}
	if oerr != nil && state == Succeeded {
		state, msg = Failed, oerr.Error()
	}
	if ctx.Err() != nil && state != Failed {
		state = Canceled
		if msg == "" {
			msg = "cancelled"
		}
	}
	rec.State = state
	rec.FinishedAt = time.Now()
	rec.Error = msg
	rec.Outputs = map[string]any{}
	for k, v := range out.params {
		rec.Outputs[k] = v
	}
	for k, arts := range out.artifacts {
		var uris []any
		for _, a := range arts {
			uris = append(uris, a.URI)
		}
		rec.Outputs[k] = uris
	}
	if err := r.opts.History.UpdateRun(hctx, rec); err != nil {
		return nil, err
	}
	r.emit(Event{State: state, Message: msg, Duration: rec.FinishedAt.Sub(rec.StartedAt), Outputs: rec.Outputs})
	res := &Result{RunID: r.runID, State: state, Outputs: rec.Outputs, Message: msg}
	if state != Succeeded {
		return res, &RunError{RunID: r.runID, State: state, Message: msg}
	}
	return res, nil
}

func (r *run) failing() bool { return !r.opts.KeepGoing && r.failFlag.Load() }
func (r *run) fail()         { r.failFlag.Store(true) }

func (r *run) emit(e Event) {
	if r.opts.Events == nil {
		return
	}
	e.Time = time.Now()
	e.RunID = r.runID
	if e.Duration > 0 {
		e.DurMS = e.Duration.Milliseconds()
	}
	r.events.send(e)
}

// eventSink hands events to the caller's function one at a time.
type eventSink struct {
	mu sync.Mutex
	fn func(Event)
}

func (s *eventSink) send(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fn(e)
}

// recordGroup records a DAG task (group, loop, sub-pipeline).
func (r *run) recordGroup(path string, t *pb.PipelineTaskSpec, state State, msg string) {
	now := time.Now()
	rec := &TaskRecord{RunID: r.runID, Path: path, Name: DisplayName(path), Component: t.GetComponentRef().GetName(), Kind: "dag",
		State: state, Error: msg}
	if state == Running {
		rec.StartedAt = now
	} else {
		rec.FinishedAt = now
	}
	r.saveTask(rec)
}

func (r *run) saveAttempt(a *AttemptRecord) { r.hw.attempt(a) }

func (r *run) saveTask(rec *TaskRecord) { r.hw.task(rec) }

var jobPlaceholder = regexp.MustCompile(`\{\{\$\.(pipeline_job_name|pipeline_job_resource_name|pipeline_job_uuid|pipeline_task_name|pipeline_task_uuid|pipeline_root|pipeline_job_create_time_utc|pipeline_job_schedule_time_utc|workspace_path)\}\}`)

// substituteJobPlaceholders resolves job and task placeholders anywhere in
// a constant input value (docs/kfp-semantics.md §2.1).
func (r *run) substituteJobPlaceholders(s string, d *dagRun, t *pb.PipelineTaskSpec) string {
	if !strings.Contains(s, "{{$.") {
		return s
	}
	job := r.jobInfo(d.taskPath(t.GetTaskInfo().GetName()), t.GetTaskInfo().GetName())
	return jobPlaceholder.ReplaceAllStringFunc(s, func(m string) string {
		switch m[4 : len(m)-2] {
		case "pipeline_job_name":
			return job.JobName
		case "pipeline_job_resource_name":
			return job.ResourceName
		case "pipeline_job_uuid":
			return job.JobUUID
		case "pipeline_task_name":
			return job.TaskName
		case "pipeline_task_uuid":
			return job.TaskUUID
		case "pipeline_root":
			return job.PipelineRoot
		case "workspace_path":
			return job.Workspace
		}
		return job.CreateTime
	})
}

func (r *run) jobInfo(path, taskName string) JobInfo {
	return JobInfo{
		JobName:      r.pipeline + "-" + r.runID,
		ResourceName: r.runID,
		JobUUID:      r.runID,
		TaskName:     taskName,
		TaskUUID:     r.runID + "/" + path,
		PipelineRoot: r.opts.Store.Root(),
		CreateTime:   r.created.UTC().Format(time.RFC3339),
		Workspace:    filepath.Join(r.runDir, "workspace"),
	}
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func physicalMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						return kb * 1024
					}
				}
			}
		}
	}
	return 8 << 30
}

// isTarget reports whether a task (display name) is the benchmark target.
func (r *run) isTarget(name string) bool {
	return contract.IsTarget(name, r.opts.Target)
}
