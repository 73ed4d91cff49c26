package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/pyfunc"
)

// attemptRun is the state of one attempt across its phases.
type attemptRun struct {
	c       *containerTask
	n       int
	lease   GPULease
	rec     *AttemptRecord
	phaseMu sync.Mutex
	needDir bool
	ei      *ExecutorInput
	et      *ExecTask
	logFile *lazyFile
	term    *lineWriter
	stderr  io.Writer
}

func (c *containerTask) newAttempt(n int, lease GPULease) *attemptRun {
	r := c.r
	a := &attemptRun{c: c, n: n, lease: lease,
		rec: &AttemptRecord{RunID: r.runID, TaskPath: c.path, Attempt: n, StartedAt: time.Now(), Executor: r.opts.Executor.Name(), Image: c.image, ImageDigest: c.digest}}
	if c.imagePhase != nil {
		a.rec.Phases = append(a.rec.Phases, *c.imagePhase)
		c.imagePhase = nil
	}
	if lease != nil {
		a.rec.GPUs = lease.UUIDs()
	}
	return a
}

// addPhase records a timed phase (executors call it from their goroutines).
func (a *attemptRun) addPhase(name string, start, end time.Time) {
	a.phaseMu.Lock()
	defer a.phaseMu.Unlock()
	a.rec.Phases = append(a.rec.Phases, Phase{Name: name, Start: start, End: end})
}

// finish completes the attempt's record with how it ended.
func (a *attemptRun) finish(o *outcome) {
	a.rec.FinishedAt = time.Now()
	if o.msg != "" {
		a.rec.Error = o.msg
	}
}

var errTaskDir = errors.New("create task directory")

// stageIn makes the task directory when the task needs one and builds the
// executor input, staging input artifacts from a remote store. The task
// directory holds the executor input and output, output parameter files,
// staged artifacts and logs. Filesystem metadata is slow on some machines,
// so a task that needs none of these (no outputs, no {{$}}) gets it only
// when it first writes a log line.
func (a *attemptRun) stageIn(ctx context.Context) error {
	c := a.c
	a.needDir = c.needsDir()
	if a.needDir {
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return fmt.Errorf("%w: %v", errTaskDir, err)
		}
	}
	ei, err := c.executorInput(ctx, a.addPhase)
	if err != nil {
		return err
	}
	a.ei = ei
	return nil
}

// prepare resolves the placeholders into the argv, writes the executor
// input, opens the log and builds the executor's task.
func (a *attemptRun) prepare() error {
	c, r, n := a.c, a.c.r, a.n
	dockerPaths := r.opts.Executor.Properties().Isolated && r.opts.Store.Remote()
	pc := &placeholderContext{in: a.ei, job: r.jobInfo(c.path, c.key), present: c.in.present, path: func(art *RuntimeArtifact) string {
		if dockerPaths {
			return KFPLocalPath(art.URI)
		}
		return art.local
	}}
	if err := pc.resolveSelfReferences(); err != nil {
		return err
	}
	eiJSON, err := json.Marshal(a.ei)
	if err != nil {
		return err
	}
	pc.json = eiJSON
	if a.needDir {
		if err := writeFileNoFollow(filepath.Join(c.dir, "executor_input.json"), eiJSON); err != nil {
			return err
		}
	}
	cmd, err := pc.resolveArgs(c.ct.Command)
	if err != nil {
		return fmt.Errorf("command: %w", err)
	}
	args, err := pc.resolveArgs(c.ct.Args)
	if err != nil {
		return fmt.Errorf("args: %w", err)
	}
	if c.noPrologue {
		cmd, args = pyfunc.WithoutPrologue(cmd, args)
	}
	logPath := filepath.Join(c.dir, fmt.Sprintf("attempt-%d.log", n))
	a.rec.LogPath = logPath
	a.logFile = &lazyFile{path: logPath, limit: r.logLimit()}
	a.term = r.outputWriter(c.name)
	var stdout io.Writer = a.logFile
	if a.term != nil {
		stdout = io.MultiWriter(a.logFile, a.term)
	}
	a.stderr = stdout
	env := append([]string(nil), c.env...)
	env = append(env, c.pyEnv...)
	var platMounts []Mount
	if c.plat != nil {
		env = append(env, c.plat.Env...)
		var err error
		if platMounts, err = c.platformMounts(); err != nil {
			return err
		}
	}
	env = append(env, "MLPIPE_RUN_ID="+r.runID, "MLPIPE_TASK="+c.path, "MLPIPE_ATTEMPT="+strconv.Itoa(n), "MLPIPE_PIPELINE="+r.pipeline)
	a.et = &ExecTask{
		RunID: r.runID, Pipeline: r.pipeline, TaskPath: c.path, Name: c.name, Attempt: n, Image: c.image, ExecutorInput: eiJSON,
		Command: cmd, Args: args, Env: env, Dir: c.workDir(a.needDir), Mounts: c.mounts(a.ei, dockerPaths),
		CPU: c.cpuLimit(), Memory: c.memLimit(), Stdout: stdout, Stderr: stdout,
		Phase: a.addPhase,
	}
	a.et.Mounts = append(a.et.Mounts, platMounts...)
	if c.plat != nil {
		a.et.ShmSize, a.et.Labels = c.plat.ShmSize, c.plat.Labels
	}
	if err := a.workspace(eiJSON); err != nil {
		return err
	}
	if a.lease != nil {
		a.et.GPUs = a.lease.UUIDs()
		a.et.GPULease = a.lease
		a.et.Env = append(env, "MLPIPE_GPU_UUIDS="+strings.Join(a.et.GPUs, ","), "MLPIPE_GPU_COUNT="+strconv.Itoa(len(a.et.GPUs)))
		a.et.Started = a.lease.SetHolder
	}
	return nil
}

// closeOutput flushes the terminal's partial line and closes the log.
func (a *attemptRun) closeOutput() {
	if a.term != nil {
		a.term.Flush()
	}
	a.logFile.Close()
}

// acquire waits for a slot, CPU and memory, then records the attempt as
// running. It returns a nil release when the run is failing fast and the
// attempt must not start, and an error when ctx ended.
func (a *attemptRun) acquire(ctx context.Context) (release func(), err error) {
	c, r := a.c, a.c.r
	queued := time.Now()
	release, err = r.sched.acquire(ctx, c.cpu, c.mem, c.prio)
	if err != nil {
		return nil, err
	}
	if r.failing() && !c.exempt {
		release()
		return nil, nil
	}
	if wait := time.Since(queued); wait > time.Millisecond {
		a.addPhase("queue", queued, time.Now())
	}
	// The task does not wait for the history: every record is in the
	// run's journal before this returns (historyWriter), and the database
	// catches up in batches.
	c.rec.State = Running
	r.saveTask(c.rec)
	// The attempt is recorded as it starts (not finished, with its log
	// path), so that `mlpipe logs` finds a running task, and the log of a
	// run killed with -9 is still found after the journal's recovery.
	started := *a.rec
	started.Phases = slices.Clone(a.rec.Phases)
	r.saveAttempt(&started)
	r.emit(Event{Task: c.name, Path: c.path, State: Running, Attempt: a.n, GPUs: a.rec.GPUs})
	return release, nil
}

// execute runs the step, sampling its GPUs meanwhile.
func (a *attemptRun) execute(ctx context.Context) (*ExecResult, error) {
	r := a.c.r
	var stopSampling func() []GPUSample
	if a.lease != nil && r.opts.GPUs != nil {
		stopSampling = r.opts.GPUs.Sample(ctx, a.et.GPUs)
	}
	runCtx := ctx
	if p := a.c.plat; p != nil && p.Timeout > 0 {
		// activeDeadlineSeconds: the step is stopped, and the attempt
		// fails (not cancelled) with the reason.
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	res, err := a.c.execute(runCtx, a.et, a.ei)
	if ctx.Err() == nil && runCtx.Err() != nil && (err != nil || res == nil || res.ExitCode != 0) {
		if res == nil || err != nil {
			res, err = &ExecResult{ExitCode: -1}, nil
		}
		res.Message = fmt.Sprintf("stopped after activeDeadlineSeconds (%s)", a.c.plat.Timeout)
	}
	if stopSampling != nil {
		a.rec.GPUSamples = stopSampling()
	}
	if res != nil {
		a.rec.ExitCode = res.ExitCode
		a.rec.OOMKilled = res.OOMKilled
		if res.ImageDigest != "" {
			a.rec.ImageDigest = res.ImageDigest
		}
	}
	return res, err
}

// exitMessage says why a step that ended with an error failed, with the
// last lines of its log.
func (a *attemptRun) exitMessage(res *ExecResult) string {
	m := fmt.Sprintf("exit code %d", res.ExitCode)
	if res.OOMKilled {
		m = fmt.Sprintf("killed: out of memory (limit %s)", kfpir.FormatBytes(float64(a.c.memLimit())))
	} else if res.Signal != "" {
		m = fmt.Sprintf("killed by %s", res.Signal)
	}
	if res.Message != "" {
		m += ": " + res.Message
	}
	if tail := lastLines(a.rec.LogPath, 3); tail != "" {
		m += "; last output: " + tail
	}
	return m
}

// collect gathers the step's outputs (a timed phase).
func (a *attemptRun) collect(ctx context.Context) (*outputs, error) {
	start := time.Now()
	out, err := a.c.collect(ctx, a.ei, a.needDir)
	a.addPhase("collect", start, time.Now())
	return out, err
}

// workspace makes the run's workspace ({{$.workspace_path}}, KFP's
// PipelineConfig workspace: one directory that every task of the run
// shares, read-write) when the step names it, and mounts it into a
// container at the same path.
func (a *attemptRun) workspace(eiJSON []byte) error {
	ws := a.c.r.jobInfo(a.c.path, a.c.key).Workspace
	uses := bytes.Contains(eiJSON, []byte(ws))
	for _, s := range append(append([]string(nil), a.et.Command...), a.et.Args...) {
		uses = uses || strings.Contains(s, ws)
	}
	if !uses {
		return nil
	}
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return fmt.Errorf("create the run's workspace: %w", err)
	}
	a.et.Mounts = append(a.et.Mounts, Mount{HostPath: ws, ContainerPath: ws})
	return nil
}
