package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mlpipe/mlpipe/internal/statedir"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/metadata"
	"github.com/mlpipe/mlpipe/pyfunc"
	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/runner/process"
	"github.com/mlpipe/mlpipe/storage"
)

// layout names what lives in the state directory.
func (a *app) layout() statedir.Layout { return statedir.Layout{Root: a.cfg.StateDir} }

func (a *app) openHistory() (*metadata.Store, error) {
	h, err := metadata.Open(a.layout().History())
	if err != nil {
		return nil, err
	}
	a.recoverInterrupted(h)
	return h, nil
}

// recoverInterrupted puts into the history what the journals of runs whose
// mlpipe died on this machine hold and the database missed, so that every
// command sees every task those runs finished, and marks the tasks they
// left running CANCELED.
func (a *app) recoverInterrupted(h *metadata.Store) {
	ctx := context.Background()
	runs, err := h.ListRuns(ctx, 50)
	if err != nil {
		return
	}
	host, _ := os.Hostname()
	for _, r := range runs {
		if (r.Host != "" && r.Host != host) || !runner.NeedsRecovery(a.cfg.StateDir, r) || (r.State == runner.Running && runAlive(r)) {
			continue
		}
		got, err := runner.Recover(ctx, h, a.cfg.StateDir, r)
		if err != nil {
			a.log.Warn("recover an interrupted run's history", "run_id", r.ID, "err", err)
			continue
		}
		if got.Records > 0 || got.Closed > 0 {
			a.log.Info("recovered an interrupted run's history", "run_id", r.ID, "records", got.Records, "tasks_canceled", got.Closed)
		}
	}
}

// openStore picks the artifact store: --pipeline-root (or config), else a
// local path given as the IR's defaultPipelineRoot, else the state dir.
func (a *app) openStore(ir *kfpir.IR, root string) (runner.ArtifactStore, error) {
	if root == "" {
		root = a.cfg.PipelineRoot
	}
	if root == "" && ir != nil {
		if d := ir.Spec.GetDefaultPipelineRoot(); strings.HasPrefix(d, "/") {
			root = d
		}
	}
	switch {
	case root == "":
		return storage.NewLocal(a.layout().Artifacts())
	case strings.HasPrefix(root, "file://"):
		return storage.NewLocal(strings.TrimPrefix(root, "file://"))
	case strings.HasPrefix(root, "minio://"), strings.HasPrefix(root, "s3://"):
		return a.openObjectStore(root)
	case strings.Contains(root, "://"):
		return nil, usagef("pipeline root %q: supported schemes are file://, minio:// and s3://", root)
	}
	return storage.NewLocal(root)
}

// chooseExecutor returns the executor for the run and says why. source
// is the path the run came from (a pipeline.yaml, its directory or an IR
// file): the Docker executor builds the images of a pipeline's components.
func (a *app) chooseExecutor(ctx context.Context, ir *kfpir.IR, source string) (runner.Executor, string, error) {
	return a.chooseExecutorFor(ctx, ir, source, "")
}

// chooseExecutorFor is chooseExecutor for a run that resumes run
// resumeRun (or a new run: ""): the Docker containers of that run that
// finished while its mlpipe was gone are kept for the resume to collect.
func (a *app) chooseExecutorFor(ctx context.Context, ir *kfpir.IR, source, resumeRun string) (runner.Executor, string, error) {
	choice := a.cfg.Executor
	switch choice {
	case "process":
		return a.processExecutor(), "process executor (--executor process)", nil
	case "docker":
		ex, err := a.dockerExecutor(ctx, ir, source, resumeRun)
		if err != nil {
			return nil, "", err
		}
		return ex, "docker executor (--executor docker)", nil
	}
	ex, err := a.dockerExecutor(ctx, ir, source, resumeRun)
	if err == nil {
		return ex, "docker executor (auto: the Docker daemon answers)", nil
	}
	return a.processExecutor(), fmt.Sprintf("process executor (auto: Docker is not usable: %v)", err), nil
}

// processExecutor runs steps as host processes with the environment
// process.DefaultPassEnv and process.pass_env allow.
func (a *app) processExecutor() *process.Executor {
	ex := process.New(0)
	ex.PassEnv = a.cfg.Process.PassEnv
	ex.VenvDir = filepath.Join(a.cfg.StateDir, "venvs")
	ex.Python = a.cfg.Python.Interpreter
	ex.Pip = pyfunc.SettingsFromEnv(a.cfg.Python.PipConf)
	return ex
}

// images lists the images of an IR's container executors.
func images(ir *kfpir.IR) []string {
	set := map[string]bool{}
	for _, e := range ir.Executors {
		if e.Container != nil && e.Container.Image != "" {
			set[e.Container.Image] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
