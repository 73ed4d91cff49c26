package runner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/runner"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConditionGroupPassesParameterAndArtifact(t *testing.T) {
	var consumed atomic.Value
	e := newEnv(t, map[string]behavior{
		"produce": func(_ context.Context, w *taskIO) int {
			w.writeArtifact("data", "payload:"+w.param("text").(string))
			w.setParam("flag", "go")
			return 0
		},
		"consume": func(_ context.Context, w *taskIO) int {
			consumed.Store(w.param("msg").(string) + "|" + w.readArtifact("data", 0))
			return 0
		},
	})
	ir := loadIR(t, readFixture(t, "appendix_a.yaml"))
	res, err := e.run(t.Context(), ir, map[string]any{"text": "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if res.State != runner.Succeeded {
		t.Fatalf("state = %s", res.State)
	}
	if got, want := consumed.Load(), "go|payload:hello"; got != want {
		t.Errorf("consume saw %q, want %q", got, want)
	}
	// The argv was resolved from the placeholders.
	argv := e.fake.argv["consume"]
	if len(argv) != 5 || argv[3] != "go" || !strings.HasSuffix(argv[4], "/produce/data") {
		t.Errorf("consume argv = %q", argv)
	}
	prod := e.hist.task(t, res.RunID, "produce")
	if d := prod.Outputs.Artifacts["data"][0].Digest; !strings.HasPrefix(d, "sha256:") {
		t.Errorf("artifact digest = %q", d)
	}
}

func TestConditionFalseSkipsGroup(t *testing.T) {
	e := newEnv(t, map[string]behavior{
		"produce": func(_ context.Context, w *taskIO) int {
			w.writeArtifact("data", "x")
			w.setParam("flag", "stop")
			return 0
		},
	})
	ir := loadIR(t, readFixture(t, "appendix_a.yaml"))
	res, err := e.run(t.Context(), ir, map[string]any{"text": "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if res.State != runner.Succeeded {
		t.Errorf("state = %s, want SUCCEEDED (a skipped group does not fail the run)", res.State)
	}
	if n := e.fake.count("consume"); n != 0 {
		t.Errorf("consume ran %d times", n)
	}
}

func TestExitHandlerRunsAfterFailureWithFinalStatus(t *testing.T) {
	var status atomic.Value
	e := newEnv(t, map[string]behavior{
		"fail-op": func(context.Context, *taskIO) int { return 1 },
		"exit-op": func(_ context.Context, w *taskIO) int {
			status.Store(w.param("status"))
			return 0
		},
	})
	ir := loadIR(t, readFixture(t, "exit_handler.yaml"))
	res, err := e.run(t.Context(), ir, map[string]any{"message": "hi"})
	var re *runner.RunError
	if !errors.As(err, &re) || re.ExitCode() != 3 {
		t.Fatalf("err = %v, want a failed run (exit code 3)", err)
	}
	if res.State != runner.Failed {
		t.Errorf("state = %s", res.State)
	}
	if n := e.fake.count("exit-op"); n != 1 {
		t.Fatalf("exit-op ran %d times, want 1", n)
	}
	st, _ := status.Load().(map[string]any)
	if st["state"] != "FAILED" || st["pipelineTaskName"] != "exit-handler-1" {
		t.Errorf("final status = %v", st)
	}
	if n := e.fake.count("after-fail"); n != 0 {
		t.Errorf("a task downstream of the failure ran")
	}
	if got := e.hist.task(t, res.RunID, "after-fail").State; got != runner.Skipped {
		t.Errorf("after-fail state = %s, want SKIPPED", got)
	}
}

func TestExitHandlerSeesCompleteOnSuccess(t *testing.T) {
	var status atomic.Value
	e := newEnv(t, map[string]behavior{
		"exit-op": func(_ context.Context, w *taskIO) int {
			status.Store(w.param("status"))
			return 0
		},
	})
	ir := loadIR(t, strings.Replace(readFixture(t, "exit_handler.yaml"), "command: [fail]", "command: [ok]", 1))
	// fail-op succeeds here (no behavior = exit 0).
	if _, err := e.run(t.Context(), ir, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := status.Load().(map[string]any); st["state"] != "COMPLETE" {
		t.Errorf("final status = %v, want COMPLETE", st)
	}
}

func TestLoopParallelismLimitAndCollectedOutputs(t *testing.T) {
	var running, peak atomic.Int32
	var total atomic.Value
	e := newEnv(t, map[string]behavior{
		"square": func(ctx context.Context, w *taskIO) int {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			sleepCtx(ctx, 30*time.Millisecond)
			running.Add(-1)
			x := int(w.param("x").(float64))
			w.setParam("Output", fmt.Sprint(x*x))
			return 0
		},
		"total": func(_ context.Context, w *taskIO) int {
			total.Store(w.param("values"))
			w.setParam("Output", "55")
			return 0
		},
	})
	ir := loadIR(t, readFixture(t, "loop.yaml"))
	res, err := e.run(t.Context(), ir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrency in the loop = %d, want the parallelismLimit 2", p)
	}
	if diff := cmp.Diff([]any{1.0, 4.0, 9.0, 16.0, 25.0}, total.Load()); diff != "" {
		t.Errorf("collected outputs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"total": 55.0}, res.Outputs); diff != "" {
		t.Errorf("pipeline outputs (-want +got):\n%s", diff)
	}
}

func TestOneOfAndNestedPipelineOutputs(t *testing.T) {
	for _, side := range []string{"heads", "tails"} {
		t.Run(side, func(t *testing.T) {
			var printed atomic.Value
			say := func(_ context.Context, w *taskIO) int {
				w.setParam("Output", w.param("text").(string))
				return 0
			}
			e := newEnv(t, map[string]behavior{
				"flip":  func(_ context.Context, w *taskIO) int { w.setParam("Output", w.param("side").(string)); return 0 },
				"heads": say, "tails": say, "inner/say": say,
				"print": func(_ context.Context, w *taskIO) int { printed.Store(w.param("message")); return 0 },
			})
			ir := loadIR(t, readFixture(t, "oneof.yaml"))
			res, err := e.run(t.Context(), ir, map[string]any{"side": side})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := printed.Load(), "it was "+side; got != want {
				t.Errorf("print got %v, want %q", got, want)
			}
			if got := res.Outputs["nested"]; got != "nested-default" {
				t.Errorf("nested output = %v, want the sub-DAG's default input", got)
			}
		})
	}
}

func TestRetryWithBackoffSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var attempts atomic.Int32
		var times []time.Time
		e := newEnv(t, map[string]behavior{
			"flaky": func(context.Context, *taskIO) int {
				times = append(times, time.Now())
				if attempts.Add(1) < 3 {
					return 1
				}
				return 0
			},
		})
		ir := compilePipeline(t, map[string]string{
			"pipeline.yaml": `
name: retry
tasks:
  flaky:
    component: c.yaml
    retry: {max: 3, backoff: 10s, factor: 3}
`,
			"c.yaml": `
name: c
implementation: {container: {image: x, command: [flaky]}}
`,
		})
		res, err := e.run(t.Context(), ir, nil)
		if err != nil {
			t.Fatal(err)
		}
		rec := e.hist.task(t, res.RunID, "flaky")
		if rec.State != runner.Succeeded || rec.Attempts != 3 {
			t.Errorf("flaky: state %s after %d attempts, want SUCCEEDED after 3", rec.State, rec.Attempts)
		}
		if len(times) != 3 {
			t.Fatalf("%d attempts", len(times))
		}
		// Backoff 10s then 30s (factor 3), exactly, on the fake clock.
		if d := times[1].Sub(times[0]); d != 10*time.Second {
			t.Errorf("first delay = %s, want 10s", d)
		}
		if d := times[2].Sub(times[1]); d != 30*time.Second {
			t.Errorf("second delay = %s, want 30s", d)
		}
	})
}

func TestRetryStopsAtMaxDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, map[string]behavior{"flaky": func(context.Context, *taskIO) int { return 1 }})
		ir := compilePipeline(t, map[string]string{
			"pipeline.yaml": "name: retry\ntasks:\n  flaky:\n    component: c.yaml\n    retry: {max: 10, backoff: 1m, factor: 2, max_backoff: 5m}\n",
			"c.yaml":        "name: c\nimplementation: {container: {image: x, command: [flaky]}}\n",
		})
		res, err := e.run(t.Context(), ir, nil)
		if err == nil {
			t.Fatal("run succeeded")
		}
		// Delays 1m, 2m fit in 5m; the next (4m) would pass it: 3 attempts.
		if got := e.hist.task(t, res.RunID, "flaky").Attempts; got != 3 {
			t.Errorf("attempts = %d, want 3", got)
		}
	})
}

// Tasks of one component with no inputs share a cache key: cache: false
// keeps them apart.
const twoBranches = `
name: branches
tasks:
  a: {component: c.yaml, cache: false}
  b: {component: c.yaml, cache: false, after: [a]}
  slow: {component: c.yaml, cache: false}
  after-slow: {component: c.yaml, cache: false, after: [slow]}
`

func TestFailFastAndKeepGoing(t *testing.T) {
	for _, keepGoing := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep-going=%v", keepGoing), func(t *testing.T) {
			e := newEnv(t, map[string]behavior{
				"a":    func(context.Context, *taskIO) int { return 1 },
				"slow": func(ctx context.Context, _ *taskIO) int { sleepCtx(ctx, 100*time.Millisecond); return 0 },
			})
			ir := compilePipeline(t, map[string]string{"pipeline.yaml": twoBranches,
				"c.yaml": "name: c\nimplementation: {container: {image: x, command: [c]}}\n"})
			res, err := e.run(t.Context(), ir, nil, func(o *runner.Options) { o.KeepGoing = keepGoing })
			if err == nil || res.State != runner.Failed {
				t.Fatalf("run = %v, %v; want FAILED", res, err)
			}
			if e.fake.count("b") != 0 {
				t.Error("b ran although a failed")
			}
			want := 0
			if keepGoing {
				want = 1
			}
			if got := e.fake.count("after-slow"); got != want {
				t.Errorf("after-slow ran %d times, want %d", got, want)
			}
		})
	}
}

func TestCachingAndNoCache(t *testing.T) {
	e := newEnv(t, map[string]behavior{
		"produce": func(_ context.Context, w *taskIO) int {
			w.writeArtifact("data", "x")
			w.setParam("flag", "go")
			return 0
		},
	})
	ir := loadIR(t, readFixture(t, "appendix_a.yaml"))
	if _, err := e.run(t.Context(), ir, map[string]any{"text": "a"}); err != nil {
		t.Fatal(err)
	}
	res, err := e.run(t.Context(), ir, map[string]any{"text": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.fake.count("produce"); got != 1 {
		t.Errorf("produce ran %d times, want 1 (second run cached)", got)
	}
	if got := e.hist.task(t, res.RunID, "produce").State; got != runner.Cached {
		t.Errorf("second run: produce %s, want CACHED", got)
	}
	// Another parameter value is another key.
	if _, err := e.run(t.Context(), ir, map[string]any{"text": "b"}); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.count("produce"); got != 2 {
		t.Errorf("produce ran %d times after a new input, want 2", got)
	}
	// --no-cache runs everything (and its result becomes the newest entry).
	res, err = e.run(t.Context(), ir, map[string]any{"text": "a"}, func(o *runner.Options) { o.NoCache = true })
	if err != nil {
		t.Fatal(err)
	}
	if got := e.fake.count("produce"); got != 3 {
		t.Errorf("produce ran %d times with --no-cache, want 3", got)
	}
	// A cached artifact that disappeared is a miss.
	rec := e.hist.task(t, res.RunID, "produce")
	if err := os.Remove(rec.Outputs.Artifacts["data"][0].URI); err != nil {
		t.Fatal(err)
	}
	if _, err := e.run(t.Context(), ir, map[string]any{"text": "a"}); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.count("produce"); got != 4 {
		t.Errorf("produce ran %d times after its cached artifact was deleted, want 4", got)
	}
}

func TestCacheKeyCoversInputArtifactContent(t *testing.T) {
	content := "v1"
	e := newEnv(t, map[string]behavior{
		"produce": func(_ context.Context, w *taskIO) int {
			w.writeArtifact("data", content)
			w.setParam("flag", "go")
			return 0
		},
	})
	ir := loadIR(t, strings.Replace(readFixture(t, "appendix_a.yaml"), "cachingOptions: {enableCache: true}\n        componentRef: {name: comp-produce}", "cachingOptions: {}\n        componentRef: {name: comp-produce}", 1))
	for _, c := range []string{"v1", "v1", "v2"} {
		content = c
		if _, err := e.run(t.Context(), ir, map[string]any{"text": "a"}); err != nil {
			t.Fatal(err)
		}
	}
	// produce is not cached; consume is cached only while its input's
	// content is the same.
	if got := e.fake.count("consume"); got != 2 {
		t.Errorf("consume ran %d times, want 2 (once for v1, once for v2)", got)
	}
}

func TestMissingOutputParameterFailsTask(t *testing.T) {
	e := newEnv(t, map[string]behavior{"produce": func(_ context.Context, w *taskIO) int { w.writeArtifact("data", "x"); return 0 }})
	ir := loadIR(t, readFixture(t, "appendix_a.yaml"))
	res, err := e.run(t.Context(), ir, nil)
	if err == nil {
		t.Fatal("run succeeded")
	}
	rec := e.hist.task(t, res.RunID, "produce")
	if rec.State != runner.Failed || !strings.Contains(rec.Error, `"flag" was not written`) {
		t.Errorf("produce: %s %q", rec.State, rec.Error)
	}
}

func TestExecutorOutputFileWins(t *testing.T) {
	var got atomic.Value
	e := newEnv(t, map[string]behavior{
		"produce": func(_ context.Context, w *taskIO) int {
			w.writeArtifact("data", "x")
			w.setParam("flag", "from-file")
			eo := `{"parameterValues": {"flag": "go"}, "artifacts": {"data": {"artifacts": [{"metadata": {"rows": 3}}]}}}`
			if err := os.WriteFile(w.in.Outputs.OutputFile, []byte(eo), 0o644); err != nil {
				t.Error(err)
			}
			return 0
		},
		"consume": func(_ context.Context, w *taskIO) int {
			got.Store(fmt.Sprint(w.param("msg"), w.in.Inputs.Artifacts["data"].Artifacts[0].Metadata["rows"]))
			return 0
		},
	})
	ir := loadIR(t, readFixture(t, "appendix_a.yaml"))
	if _, err := e.run(t.Context(), ir, nil); err != nil {
		t.Fatal(err)
	}
	if got.Load() != "go3" {
		t.Errorf("consume saw %v, want the executor output's value and merged metadata", got.Load())
	}
}

func TestCancelStopsRunAndResumeFinishesIt(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, map[string]behavior{
		"a": func(context.Context, *taskIO) int { return 0 },
		"b": func(ctx context.Context, _ *taskIO) int {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return 0
		},
	})
	ir := compilePipeline(t, map[string]string{"pipeline.yaml": `
name: resume
tasks:
  a: {component: c.yaml, cache: false}
  b: {component: c.yaml, cache: false, after: [a]}
  c: {component: c.yaml, cache: false, after: [b]}
`, "c.yaml": "name: c\nimplementation: {container: {image: x, command: [c]}}\n"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	var res *runner.Result
	var err error
	go func() {
		res, err = e.run(ctx, ir, nil)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.fake.count("b") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	var re *runner.RunError
	if !errors.As(err, &re) || re.State != runner.Canceled || re.ExitCode() != 130 {
		t.Fatalf("err = %v, want a cancelled run (exit code 130)", err)
	}
	if got := e.hist.task(t, res.RunID, "b").State; got != runner.Canceled {
		t.Errorf("b = %s, want CANCELED", got)
	}
	close(release)
	res2, err := e.run(t.Context(), ir, nil, func(o *runner.Options) { o.Resume = true; o.RunID = res.RunID })
	if err != nil {
		t.Fatal(err)
	}
	if res2.RunID != res.RunID || res2.State != runner.Succeeded {
		t.Errorf("resume: %s %s", res2.RunID, res2.State)
	}
	if got := map[string]int{"a": e.fake.count("a"), "b": e.fake.count("b"), "c": e.fake.count("c")}; !cmp.Equal(got, map[string]int{"a": 1, "b": 2, "c": 1}) {
		t.Errorf("calls = %v; a must not run again", got)
	}
}

func TestSchedulerRespectsCPUBudgetAndSlots(t *testing.T) {
	var running, peak atomic.Int32
	work := func(ctx context.Context, _ *taskIO) int {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		sleepCtx(ctx, 20*time.Millisecond)
		running.Add(-1)
		return 0
	}
	var tasks strings.Builder
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&tasks, "  t%d: {component: c.yaml, resources: {cpu: 2}, cache: false}\n", i)
	}
	ir := compilePipeline(t, map[string]string{"pipeline.yaml": "name: budget\ntasks:\n" + tasks.String(),
		"c.yaml": "name: c\nimplementation: {container: {image: x, command: [c]}}\n"})
	b := map[string]behavior{}
	for i := 0; i < 8; i++ {
		b[fmt.Sprintf("t%d", i)] = work
	}
	e := newEnv(t, b)
	if _, err := e.run(t.Context(), ir, nil, func(o *runner.Options) { o.CPUs = 5; o.MaxParallel = 8 }); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak = %d tasks of 2 CPUs on a 5-CPU budget, want 2", p)
	}
	peak.Store(0)
	ir2 := compilePipeline(t, map[string]string{"pipeline.yaml": strings.ReplaceAll("name: slots\ntasks:\n"+tasks.String(), "resources: {cpu: 2}, ", ""),
		"c.yaml": "name: c\nimplementation: {container: {image: x, command: [c]}}\n"})
	if _, err := e.run(t.Context(), ir2, nil, func(o *runner.Options) { o.CPUs = 1; o.MaxParallel = 3 }); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 3 {
		t.Errorf("peak = %d tasks without requests, want --max-parallel 3 (no CPU reserved)", p)
	}
}

func TestPreflightRefusesGPUTaskWithoutGPUs(t *testing.T) {
	e := newEnv(t, nil)
	ir := compilePipeline(t, map[string]string{"pipeline.yaml": "name: gpu\ntasks:\n  train: {component: c.yaml, resources: {gpu: 1}}\n",
		"c.yaml": "name: c\nimplementation: {container: {image: x, command: [c]}}\n"})
	_, err := e.run(t.Context(), ir, nil, func(o *runner.Options) { o.GPUUnavailable = "libnvidia-ml.so.1 not found" })
	var pe *runner.PreflightError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a PreflightError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "task train needs 1 GPU") || !strings.Contains(msg, "libnvidia-ml.so.1 not found") {
		t.Errorf("message %q does not name the task and the reason", msg)
	}
	if e.fake.count("train") != 0 {
		t.Error("the task ran")
	}
}

func TestImporterAndArtifactIterator(t *testing.T) {
	src := filepath.Join(t.TempDir(), "input.txt")
	if err := os.WriteFile(src, []byte("abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	var imported atomic.Value
	e := newEnv(t, map[string]behavior{
		"read": func(_ context.Context, w *taskIO) int {
			d := w.in.Inputs.Artifacts["data"].Artifacts[0]
			imported.Store(d.Metadata["source"])
			// Each iteration writes a part of a different size.
			i := len(w.task.Name)
			w.writeArtifact("part", strings.Repeat("x", i+int(w.task.Name[len(w.task.Name)-2]-'0')))
			return 0
		},
		"size": func(_ context.Context, w *taskIO) int {
			w.setParam("n", fmt.Sprint(len(w.readArtifact("part", 0))))
			return 0
		},
	})
	ir := loadIR(t, readFixture(t, "importer_artifact_loop.yaml"))
	res, err := e.run(t.Context(), ir, map[string]any{"dataset_uri": src})
	if err != nil {
		t.Fatal(err)
	}
	if imported.Load() != src {
		t.Errorf("importer metadata placeholder resolved to %v, want %s", imported.Load(), src)
	}
	// read[0..2] wrote 7, 8 and 9 bytes; the artifact loop sizes them in order.
	if diff := cmp.Diff([]any{7.0, 8.0, 9.0}, res.Outputs["sizes"]); diff != "" {
		t.Errorf("sizes (-want +got):\n%s", diff)
	}
	imp := e.hist.task(t, res.RunID, "importer")
	if imp.Kind != "importer" || imp.Outputs.Artifacts["artifact"][0].URI != src {
		t.Errorf("importer record %+v", imp)
	}
}

// TestNestedLoopsCollectNestedLists: a loop over a sub-pipeline that loops
// itself collects a list of lists (docs/kfp-semantics.md §4.5: nested, not
// flattened as by the backend).
func TestNestedLoopsCollectNestedLists(t *testing.T) {
	e := newEnv(t, map[string]behavior{
		"row/mul": func(_ context.Context, w *taskIO) int {
			w.setParam("p", fmt.Sprint(int(w.param("a").(float64)*w.param("b").(float64))))
			return 0
		},
	})
	ir := compilePipeline(t, map[string]string{
		"pipeline.yaml": `
name: nested
outputs:
  table: ${{ tasks.row.outputs.products }}
tasks:
  row:
    component: row.yaml
    for_each: [1, 2]
    inputs: {a: "${{ item }}"}
`,
		"row.yaml": `
name: row
inputs: {a: {type: Integer}}
outputs:
  products: ${{ tasks.mul.outputs.p }}
tasks:
  mul:
    component: mul.yaml
    for_each: [10, 20]
    inputs: {a: "${{ inputs.a }}", b: "${{ item }}"}
`,
		"mul.yaml": `
name: mul
inputs: [{name: a, type: Integer}, {name: b, type: Integer}]
outputs: [{name: p, type: Integer}]
implementation: {container: {image: x, command: [mul], args: [{outputPath: p}]}}
`,
	})
	res, err := e.run(t.Context(), ir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{[]any{10.0, 20.0}, []any{20.0, 40.0}}
	if diff := cmp.Diff(want, res.Outputs["table"]); diff != "" {
		t.Errorf("nested collected outputs (-want +got):\n%s", diff)
	}
}
