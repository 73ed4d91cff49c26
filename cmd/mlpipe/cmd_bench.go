package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/bench"
	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/gpu"
	"github.com/mlpipe/mlpipe/runner"
)

func init() { extraCommands = append(extraCommands, newBenchCmd) }

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

func runBench(ctx context.Context, a *app, o benchOptions, path string) error {
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
	var baseline *bench.Result
	if o.compare != "" {
		var err error
		if baseline, err = bench.ReadResult(o.compare); err != nil {
			return usageError{err}
		}
	}
	ir, params, err := loadWithParams(path, o.params)
	if err != nil {
		return err
	}
	if o.task != "" {
		pl, err := compiler.MakePlan(ir, params)
		if err != nil {
			return err
		}
		found := false
		var names []string
		for _, t := range pl.Tasks {
			dn := runner.DisplayName(strings.ReplaceAll(t.Path, "[*]", ""))
			names = append(names, dn)
			if dn == o.task || strings.HasPrefix(dn, o.task+"[") || t.Name == o.task {
				found = true
			}
		}
		if !found {
			return usagef("--task %s: no such task (tasks: %s)", o.task, strings.Join(names, ", "))
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
	var kept []string
	for i := 0; i < o.warmup+o.repeat; i++ {
		opts := runner.Options{
			IR: ir, Params: params, Source: "bench " + path, Executor: ex, Store: store, GPUs: gpus, GPUUnavailable: gpuWhy,
			History: hist, StateDir: a.cfg.StateDir, MaxParallel: a.cfg.MaxParallel, Logger: a.log,
			NoCache: o.task == "", Target: o.task,
			MaxParamBytes: a.cfg.Limits.outputParameterBytes, MaxLogBytes: a.cfg.Limits.logBytes,
		}
		start := time.Now()
		res, err := runner.Run(ctx, opts)
		label := "measured"
		if i < o.warmup {
			label = "warm-up"
		}
		if err != nil {
			var re *runner.RunError
			if errors.As(err, &re) && re.State == runner.Failed {
				return fmt.Errorf("%s run %d (%s) failed: %s; see mlpipe logs %s: %w", label, i+1, re.RunID, re.Message, re.RunID, err)
			}
			return err
		}
		fmt.Fprintf(a.stderr, "mlpipe: %s run %d/%d: %s in %s\n", label, i+1, o.warmup+o.repeat, res.RunID, fmtDuration(time.Since(start)))
		if i >= o.warmup {
			kept = append(kept, res.RunID)
		}
	}
	var data []bench.RunData
	var lastRun *runner.RunRecord
	var lastTasks []*runner.TaskRecord
	var lastAttempts []*runner.AttemptRecord
	for _, id := range kept {
		rec, err := hist.Run(ctx, id)
		if err != nil {
			return err
		}
		tasks, err := hist.Tasks(ctx, id)
		if err != nil {
			return err
		}
		ats, err := hist.Attempts(ctx, id, "")
		if err != nil {
			return err
		}
		if o.task != "" {
			var keep []*runner.TaskRecord
			for _, t := range tasks {
				if t.Name == o.task || strings.HasPrefix(t.Name, o.task+"[") {
					keep = append(keep, t)
				}
			}
			tasks = keep
		}
		data = append(data, bench.RunData{RunID: id, Tasks: tasks, Attempts: ats})
		lastRun, lastTasks, lastAttempts = rec, tasks, ats
	}
	result := &bench.Result{Pipeline: ir.Spec.GetPipelineInfo().GetName(), Date: time.Now().UTC(), Machine: bench.ThisMachine(gpuNames),
		Executor: ex.Name(), Repeat: o.repeat, Warmup: o.warmup, Target: o.task, Runs: kept, Tasks: bench.Collect(data)}
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
