package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/bench"
	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/gpu"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/runner"
)

type benchOptions struct {
	params        []string
	repeat        int
	warmup        int
	task          string
	output        string
	compare       string
	maxRegression float64
	report        string
}

func newBenchCmd(a *app) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench PIPELINE|IR",
		Short: "Measure each component's execution time, phase by phase, over repeated runs",
		Long: `Run a pipeline --warmup times (discarded) and then --repeat times with the cache off, and
report for every task and phase (queue wait, image build/pull, container create/start,
input staging, execution, output collection, teardown) n, min, median, p95, mean,
standard deviation and coefficient of variation, with GPU utilisation, memory and
energy for GPU steps. --task benchmarks one task, its inputs taken from a cached run of
the tasks before it. --output json writes a baseline for --compare; --max-regression PCT
exits 3 when a task's median execution time got slower by more than PCT percent with a
95% bootstrap interval that excludes zero.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return runBench(cmd.Context(), a, o, argv[0])
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.params, "param", "p", nil, "pipeline parameter NAME=VALUE (repeatable)")
	f.IntVar(&o.repeat, "repeat", 5, "measured runs")
	f.IntVar(&o.warmup, "warmup", 1, "warm-up runs, discarded")
	f.StringVar(&o.task, "task", "", "benchmark only this task (its upstream tasks come from the cache)")
	f.StringVar(&o.output, "output", "table", "table, json or csv")
	f.StringVar(&o.compare, "compare", "", "baseline written by --output json")
	f.Float64Var(&o.maxRegression, "max-regression", -1, "with --compare: exit 3 when a task got slower by more than PCT percent")
	f.StringVar(&o.report, "report", "", "write a self-contained HTML report to FILE.html")
	f.String("executor", "", "auto, docker or process")
	f.Int("max-parallel", 0, "tasks running at once (default: number of CPUs)")
	f.String("pipeline-root", "", "where artifacts go")
	return cmd
}

// regressionError ends a benchmark that found a regression (exit code 3).
type regressionError struct{ tasks []string }

func (e regressionError) Error() string {
	return "performance regression in " + strings.Join(e.tasks, ", ")
}
func (e regressionError) ExitCode() int { return 3 }

// check refuses options that cannot work together.
func (o benchOptions) check() error {
	switch o.output {
	case "table", "json", "csv":
	default:
		return usagef("--output must be table, json or csv, not %q", o.output)
	}
	if o.repeat < 1 || o.warmup < 0 {
		return usagef("--repeat must be at least 1 and --warmup at least 0")
	}
	if o.maxRegression >= 0 && o.compare == "" {
		return usagef("--max-regression needs --compare BASELINE.json")
	}
	return nil
}

// checkTarget refuses a --task that names no task of the plan.
func checkTarget(ir *kfpir.IR, params map[string]any, task string) error {
	pl, err := compiler.MakePlan(ir, params)
	if err != nil {
		return err
	}
	var names []string
	for _, t := range pl.Tasks {
		dn := runner.DisplayName(strings.ReplaceAll(t.Path, "[*]", ""))
		names = append(names, dn)
		if bench.IsTarget(dn, task) || t.Name == task {
			return nil
		}
	}
	return usagef("--task %s: no such task (tasks: %s)", task, strings.Join(names, ", "))
}

func runBench(ctx context.Context, a *app, o benchOptions, path string) error {
	if err := o.check(); err != nil {
		return err
	}
	var baseline *bench.Result
	if o.compare != "" {
		var err error
		if baseline, err = bench.ReadResult(o.compare); err != nil {
			return usageError{err}
		}
	}
	ir, params, err := compiler.OpenWithParams(path, o.params)
	if err != nil {
		return err
	}
	if o.task != "" {
		if err := checkTarget(ir, params, o.task); err != nil {
			return err
		}
	}
	hist, err := a.openHistory()
	if err != nil {
		return err
	}
	defer hist.Close()
	store, err := a.openStore(ir, "")
	if err != nil {
		return err
	}
	ex, why, err := a.chooseExecutor(ctx, ir, path)
	if err != nil {
		return err
	}
	gpus, gpuWhy, closeGPUs := a.gpuAllocator(ir)
	defer closeGPUs()
	var gpuNames []string
	if al, ok := gpus.(*gpu.Allocator); ok {
		desc, _ := al.Inventory().Info()
		if devs, err := al.Inventory().Devices(); err == nil {
			for _, d := range devs {
				gpuNames = append(gpuNames, d.Name)
			}
		}
		gpuNames = append(gpuNames, desc)
	}
	fmt.Fprintf(a.stderr, "mlpipe: benchmarking %s with the %s: %d warm-up + %d measured run(s)\n", ir.Spec.GetPipelineInfo().GetName(), why, o.warmup, o.repeat)
	kept, err := bench.Measure(ctx, bench.Plan{
		Options: runner.Options{
			IR: ir, Params: params, Source: "bench " + path, Executor: ex, Store: store, GPUs: gpus, GPUUnavailable: gpuWhy,
			History: hist, StateDir: a.cfg.StateDir, MaxParallel: a.cfg.MaxParallel, Logger: a.log,
			MaxParamBytes: a.cfg.Limits.outputParameterBytes, MaxLogBytes: a.cfg.Limits.logBytes,
		},
		Warmup: o.warmup, Repeat: o.repeat, Target: o.task,
		Progress: func(label string, i, n int, runID string, took time.Duration) {
			fmt.Fprintf(a.stderr, "mlpipe: %s run %d/%d: %s in %s\n", label, i, n, runID, fmtDuration(took))
		},
	})
	if err != nil {
		return err
	}
	data, lastRun, err := bench.Gather(ctx, hist, kept, o.task)
	if err != nil {
		return err
	}
	var lastTasks []*runner.TaskRecord
	var lastAttempts []*runner.AttemptRecord
	if len(data) > 0 {
		lastTasks, lastAttempts = data[len(data)-1].Tasks, data[len(data)-1].Attempts
	}
	result := &bench.Result{Pipeline: ir.Spec.GetPipelineInfo().GetName(), Date: time.Now().UTC(), Machine: bench.ThisMachine(gpuNames),
		Executor: ex.Name(), Repeat: o.repeat, Warmup: o.warmup, Target: o.task, Runs: kept, Tasks: bench.Collect(data), NotRun: bench.CollectNotRun(data)}
	switch o.output {
	case "json":
		err = result.WriteJSON(a.stdout)
	case "csv":
		err = result.WriteCSV(a.stdout)
	default:
		err = result.WriteTable(a.stdout)
	}
	if err != nil {
		return err
	}
	if o.report != "" {
		f, err := os.Create(o.report)
		if err != nil {
			return err
		}
		werr := bench.WriteHTML(f, result, bench.TimelineSVG(lastRun, lastTasks, lastAttempts))
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return werr
		}
		fmt.Fprintf(a.stderr, "mlpipe: report written to %s\n", o.report)
	}
	if baseline != nil {
		changes := bench.CompareResults(baseline, result, o.maxRegression)
		w := a.stdout
		if o.output != "table" {
			w = a.stderr
		}
		fmt.Fprintf(w, "\nCompared with %s (%s):\n", o.compare, baseline.Date.Format(time.RFC3339))
		bench.WriteComparison(w, changes, o.maxRegression)
		var regressed []string
		for _, c := range changes {
			if c.Regressed {
				regressed = append(regressed, fmt.Sprintf("%s (%+.1f%%)", c.Task, c.Change.Pct))
			}
		}
		if len(regressed) > 0 {
			return regressionError{tasks: regressed}
		}
	}
	return nil
}
