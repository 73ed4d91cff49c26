package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/internal/termsafe"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/platform"
	"github.com/mlpipe/mlpipe/runner"
)

type runOptions struct {
	params    []string
	noCache   bool
	keepGoing bool
	output    string
	resume    string
	runID     string
}

func newRunCmd(a *app) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run PIPELINE|IR",
		Short: "Run a pipeline (pipeline.yaml or any KFP IR) on this machine",
		Long: `Run a pipeline.yaml (compiled on the fly) or a KFP IR file compiled by anyone, with the
semantics of a KFP cluster: tasks in parallel as far as the DAG, --max-parallel and the
machine's CPUs, memory and GPUs allow; caching; retries; exit handlers. Every run is
recorded (mlpipe runs, mlpipe logs) and can be resumed with --resume RUN_ID.

Exit codes: 0 succeeded, 2 invalid input, 3 a task failed, 130 cancelled.`,
		Args: args(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), a, o, args)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.params, "param", "p", nil, "pipeline parameter NAME=VALUE (repeatable)")
	f.String("executor", "", "auto, docker or process (default auto: Docker when the daemon answers)")
	f.Int("max-parallel", 0, "tasks running at once (default: number of CPUs)")
	f.String("pipeline-root", "", "where artifacts go: a directory, minio://bucket/prefix or s3://bucket/prefix")
	f.BoolVar(&o.noCache, "no-cache", false, "do not use cached results")
	f.BoolVar(&o.keepGoing, "keep-going", false, "after a failure, let independent tasks finish")
	f.StringVar(&o.output, "output", "text", "text or json (one event per line)")
	f.StringVar(&o.resume, "resume", "", "continue a failed, cancelled or killed run")
	f.StringVar(&o.runID, "run-id", "", "id for the new run (default: generated)")
	_ = f.MarkHidden("run-id")
	return cmd
}

func runRun(ctx context.Context, a *app, o runOptions, args []string) error {
	if o.output != "text" && o.output != "json" {
		return usagef("--output must be text or json, not %q", o.output)
	}
	if os.Getenv("GOGC") == "" {
		// A run's heap is small and short-lived; collecting it less often
		// takes the collector off the steps' critical path.
		debug.SetGCPercent(400)
	}
	if o.resume == "" && len(args) == 0 {
		return usagef("run: give a pipeline.yaml, its directory or an IR file")
	}
	hist, err := a.openHistory()
	if err != nil {
		return err
	}
	defer hist.Close()
	reapInterrupted(ctx, hist)
	var ir *kfpir.IR
	var params map[string]any
	source := ""
	runID := o.runID
	if o.resume != "" {
		if len(o.params) > 0 {
			return usagef("--resume continues a run with its own parameters; -p cannot change them")
		}
		rec, err := hist.ResolveRun(ctx, o.resume)
		if err != nil {
			return usageError{err}
		}
		ir, err = kfpir.LoadIR(rec.IRPath)
		if err != nil {
			return fmt.Errorf("load the IR saved with run %s: %w", rec.ID, err)
		}
		params, source, runID = rec.Params, rec.Source, rec.ID
	} else {
		source = args[0]
		ir, params, err = compiler.OpenWithParams(source, o.params)
		if err != nil {
			return err
		}
	}
	store, err := a.openStore(ir, "")
	if err != nil {
		return err
	}
	resumeRun := ""
	if o.resume != "" {
		resumeRun = runID
	}
	ex, why, err := a.chooseExecutorFor(ctx, ir, source, resumeRun)
	if err != nil {
		return err
	}
	if c, ok := ex.(interface {
		Cleanup(context.Context) (int, error)
	}); ok && resumeRun != "" {
		// The containers kept for the resume that it did not collect.
		defer func() { _, _ = c.Cleanup(context.WithoutCancel(ctx)) }()
	}
	gpus, gpuWhy, closeGPUs := a.gpuAllocator(ir)
	defer closeGPUs()
	total := 0
	if pl, err := compiler.MakePlan(ir, params); err == nil {
		total = len(pl.Tasks)
	}
	if o.output == "text" {
		fmt.Fprintf(a.stderr, "mlpipe: %s with the %s\n", ir.Spec.GetPipelineInfo().GetName(), why)
		if s := a.cfg.sourcesLine(); s != "" {
			fmt.Fprintf(a.stderr, "mlpipe: %s\n", termsafe.Escape(s))
		}
		if ex.Name() == "process" {
			if imgs := images(ir); len(imgs) > 0 {
				fmt.Fprintf(a.stderr, "mlpipe: the process executor runs commands on this machine and ignores the images (%s)\n", termsafe.Escape(strings.Join(imgs, ", ")))
			}
			if lim := limitedExecutors(ir); len(lim) > 0 {
				fmt.Fprintf(a.stderr, "mlpipe: the process executor does not enforce CPU and memory limits (%s): they only reserve the machine's budget, and a step may use more; --executor docker enforces them\n", termsafe.Escape(strings.Join(lim, ", ")))
			}
		}
	}
	prog := newProgress(o.output, a.stdout, a.stderr, total)
	if tv, ok := prog.(transferView); ok {
		f := tv.Transfer
		a.transfers.Store(&f)
		defer a.transfers.Store(nil)
	}
	opts := runner.Options{
		IR: ir, Params: params, RunID: runID, Resume: o.resume != "", Source: source,
		Executor: ex, Store: store, GPUs: gpus, GPUUnavailable: gpuWhy, History: hist, StateDir: a.cfg.StateDir,
		MaxParallel: a.cfg.MaxParallel, CPUs: float64(runtime.NumCPU()), KeepGoing: o.keepGoing, NoCache: o.noCache,
		NoPythonPrepare: !a.cfg.Python.Prepare, KeepPythonPrologue: a.cfg.Python.KeepPrologue,
		Platform: platform.Sources{SecretsDir: a.cfg.Kubernetes.SecretsDir, ConfigMapsDir: a.cfg.Kubernetes.ConfigMapsDir,
			PVCs: a.cfg.Kubernetes.PVCs, Namespace: a.cfg.Kubernetes.Namespace},
		Events: prog.Event, Output: prog.Output(), Logger: a.log,
		MaxParamBytes: a.cfg.Limits.outputParameterBytes, MaxLogBytes: a.cfg.Limits.logBytes,
	}
	start := time.Now()
	res, err := runner.Run(ctx, opts)
	a.transfers.Store(nil)
	prog.Close()
	if err != nil {
		var re *runner.RunError
		if errors.As(err, &re) && o.output == "text" {
			fmt.Fprintf(a.stderr, "mlpipe: see the logs with: mlpipe logs %s\n", re.RunID)
		}
		if errors.As(err, &re) && re.State == runner.Canceled {
			fmt.Fprintf(a.stderr, "mlpipe: resume it with: mlpipe run --resume %s\n", re.RunID)
		}
		return err
	}
	if o.output == "text" {
		fmt.Fprintf(a.stdout, "run %s %s in %s\n", res.RunID, res.State, fmtDuration(time.Since(start)))
		keys := make([]string, 0, len(res.Outputs))
		for k := range res.Outputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(a.stdout, "  %s = %s\n", k, termsafe.Escape(runner.FormatValue(res.Outputs[k])))
		}
	}
	return nil
}

// limitedExecutors lists the executors of an IR that set CPU or memory
// limits, as "label: cpu=2 memory=4Gi".
func limitedExecutors(ir *kfpir.IR) []string {
	var out []string
	for _, label := range slices.Sorted(maps.Keys(ir.Executors)) {
		c := ir.Executors[label].Container
		if c == nil || (c.Resources.CPULimit == "" && c.Resources.MemoryLimit == "") {
			continue
		}
		s := strings.TrimPrefix(label, "exec-") + ":"
		if c.Resources.CPULimit != "" {
			s += " cpu=" + c.Resources.CPULimit
		}
		if c.Resources.MemoryLimit != "" {
			s += " memory=" + c.Resources.MemoryLimit
		}
		out = append(out, s)
	}
	return out
}
