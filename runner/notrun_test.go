package runner_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/runner"
)

// notRunPipeline has a task behind a condition, a group of two tasks behind
// the same condition (one of them in a sub-pipeline), a loop over a
// parameter list and a task after a step that may fail.
var notRunFiles = map[string]string{
	"pipeline.yaml": `
name: notrun
inputs:
  threshold: {type: Float, default: 0.8}
  items: {type: List, default: [1, 2]}
tasks:
  evaluate: {component: eval.yaml, cache: false}
  publish:
    component: step.yaml
    when: tasks.evaluate.outputs.acc >= inputs.threshold
    cache: false
  nested:
    component: sub.yaml
    when: tasks.evaluate.outputs.acc >= inputs.threshold
  sweep:
    component: step.yaml
    for_each: ${{ inputs.items }}
    cache: false
  flaky: {component: flaky.yaml, cache: false}
  report: {component: step.yaml, cache: false, after: [flaky]}
`,
	"sub.yaml": `
name: sub
tasks:
  inner: {component: step.yaml, cache: false}
`,
	"eval.yaml": `
name: eval
outputs: [{name: acc, type: Float}]
implementation: {container: {image: x, command: [eval], args: [{outputPath: acc}]}}
`,
	"step.yaml":  "name: step\nimplementation: {container: {image: x, command: [step]}}\n",
	"flaky.yaml": "name: flaky\nimplementation: {container: {image: x, command: [flaky]}}\n",
}

type notRunRow struct {
	Path   string
	State  runner.State
	Reason string
}

func notRunRows(e *env, runID string) []notRunRow {
	e.hist.mu.Lock()
	defer e.hist.mu.Unlock()
	var rows []notRunRow
	for _, tr := range e.hist.tasks[runID] {
		if tr.Kind != "dag" && (tr.State == runner.Skipped || tr.State == runner.Canceled) {
			rows = append(rows, notRunRow{tr.Path, tr.State, tr.Error})
		}
	}
	slices.SortFunc(rows, func(a, b notRunRow) int { return strings.Compare(a.Path, b.Path) })
	return rows
}

// Every task of the IR that does not run is in the history by its own path,
// with the reason: the condition with the values it saw, the group it is
// in, a loop over no items, an upstream failure.
func TestTasksThatDoNotRunAreRecorded(t *testing.T) {
	const cond = "condition evaluate.acc (0.72) >= threshold (0.8) is false"
	tests := []struct {
		name   string
		params map[string]any
		flaky  int // exit code of flaky
		want   []notRunRow
	}{
		{"condition false, loop over no items", map[string]any{"threshold": 0.8, "items": []any{}}, 0, []notRunRow{
			{"condition-1/publish", runner.Skipped, "in condition-1: " + cond},
			{"condition-2/nested/inner", runner.Skipped, "in condition-2: " + cond},
			{"for-loop-3/sweep", runner.Skipped, "in for-loop-3: the loop has no items"},
		}},
		{"condition true, upstream failed", map[string]any{"threshold": 0.5, "items": []any{1}}, 1, []notRunRow{
			{"report", runner.Skipped, "upstream task flaky failed"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]behavior{
				"evaluate": func(_ context.Context, w *taskIO) int { w.setParam("acc", "0.72"); return 0 },
				"flaky":    func(context.Context, *taskIO) int { return tc.flaky },
			})
			ir := compilePipeline(t, notRunFiles)
			res, _ := e.run(t.Context(), ir, tc.params, func(o *runner.Options) { o.KeepGoing = true })
			if diff := cmp.Diff(tc.want, notRunRows(e, res.RunID)); diff != "" {
				t.Errorf("tasks not run (-want +got):\n%s", diff)
			}
			// Each has its event, as a step; groups are marked kind dag.
			if tc.flaky == 0 {
				tc.want = append(tc.want, notRunRow{"condition-2/nested", runner.Skipped, "in condition-2: " + cond})
			}
			for _, row := range tc.want {
				found := false
				for _, ev := range e.events {
					if ev.Path == row.Path && ev.State == row.State && ev.Message == row.Reason {
						found = true
						if want := map[bool]string{true: "dag", false: ""}[row.Path == "condition-2/nested"]; ev.Kind != want {
							t.Errorf("event for %s has kind %q, want %q", row.Path, ev.Kind, want)
						}
					}
				}
				if !found {
					t.Errorf("no %s event for %s", row.State, row.Path)
				}
			}
		})
	}
}

// Iterations a failing run never starts are recorded under their own paths.
func TestLoopIterationsNotStartedAreRecorded(t *testing.T) {
	e := newEnv(t, map[string]behavior{
		"work": func(_ context.Context, w *taskIO) int {
			if w.param("n") == float64(1) || w.param("n") == int64(1) || w.param("n") == "1" {
				return 1
			}
			return 0
		},
	})
	ir := compilePipeline(t, map[string]string{"pipeline.yaml": `
name: loopfail
tasks:
  work:
    component: c.yaml
    for_each: [1, 2, 3]
    parallelism: 1
    inputs: {n: "${{ item }}"}
    cache: false
`, "c.yaml": "name: c\ninputs: [{name: n, type: Integer}]\nimplementation: {container: {image: x, command: [c]}}\n"})
	res, err := e.run(t.Context(), ir, nil)
	if err == nil || res.State != runner.Failed {
		t.Fatalf("run = %v, %v; want FAILED", res, err)
	}
	why := "in for-loop-1[%d]: not started: the run is failing (fail-fast; --keep-going runs independent tasks)"
	want := []notRunRow{
		{"for-loop-1[1]/work", runner.Skipped, fmt.Sprintf(why, 1)},
		{"for-loop-1[2]/work", runner.Skipped, fmt.Sprintf(why, 2)},
	}
	if diff := cmp.Diff(want, notRunRows(e, res.RunID)); diff != "" {
		t.Errorf("tasks not run (-want +got):\n%s", diff)
	}
}

// A resumed run decides its conditions from the same inputs: what it
// recorded as skipped stays skipped, with the same reason.
func TestResumeKeepsRecordedSkips(t *testing.T) {
	var flaky atomic.Int32
	flaky.Store(1)
	e := newEnv(t, map[string]behavior{
		"evaluate": func(_ context.Context, w *taskIO) int { w.setParam("acc", "0.72"); return 0 },
		"flaky":    func(context.Context, *taskIO) int { return int(flaky.Load()) },
	})
	ir := compilePipeline(t, notRunFiles)
	params := map[string]any{"threshold": 0.8, "items": []any{1}}
	res, err := e.run(t.Context(), ir, params, func(o *runner.Options) { o.KeepGoing = true })
	if err == nil || res.State != runner.Failed {
		t.Fatalf("first run: %v %v", res, err)
	}
	before := notRunRows(e, res.RunID)
	flaky.Store(0)
	res2, err := e.run(t.Context(), ir, params, func(o *runner.Options) { o.Resume = true; o.RunID = res.RunID })
	if err != nil || res2.State != runner.Succeeded {
		t.Fatalf("resume: %v %v", res2, err)
	}
	if n := e.fake.count("evaluate"); n != 1 {
		t.Errorf("evaluate ran %d times; the resume must reuse it", n)
	}
	after := notRunRows(e, res.RunID)
	var skipped []notRunRow
	for _, row := range before {
		if row.Path != "report" { // report ran once flaky succeeded
			skipped = append(skipped, row)
		}
	}
	if diff := cmp.Diff(skipped, after); diff != "" {
		t.Errorf("skips after the resume (-before +after):\n%s", diff)
	}
}
