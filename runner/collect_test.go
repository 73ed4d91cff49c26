package runner_test

import (
	"context"
	"sync"
	"testing"

	"github.com/mlpipe/mlpipe/runner"
)

// fakeCollector is a fake executor whose attempts can outlive a dead run
// (as Docker containers do).
type fakeCollector struct {
	*fakeExecutor
	mu        sync.Mutex
	finished  map[string]int // task path -> attempt that finished meanwhile
	mismatch  bool           // Collect finds it is not the task
	collected []string
}

func (f *fakeCollector) Finished(_ context.Context, _, taskPath string, attempt int, _ string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finished[taskPath] == attempt
}

func (f *fakeCollector) Collect(_ context.Context, t *runner.ExecTask) (*runner.ExecResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.finished[t.TaskPath] != t.Attempt || f.mismatch {
		return nil, runner.ErrNotCollectable
	}
	delete(f.finished, t.TaskPath)
	f.collected = append(f.collected, t.TaskPath)
	return &runner.ExecResult{}, nil
}

// TestSecurityResumeCollectsFinishedAttempt: an attempt the interrupted
// run started, that finished while mlpipe was gone (its output written),
// is collected by the resume, not run again; one that turns out not to
// match runs again from nothing.
func TestSecurityResumeCollectsFinishedAttempt(t *testing.T) {
	for _, mismatch := range []bool{false, true} {
		runs := 0
		e := newEnv(t, map[string]behavior{
			"work": func(_ context.Context, w *taskIO) int {
				runs++
				if runs == 1 {
					// The dead run's attempt: its output is written,
					// mlpipe never saw it end (here: it failed).
					w.setParam("n", "41")
					return 1
				}
				return 0 // writes nothing: only a collect finds 41
			},
		})
		col := &fakeCollector{fakeExecutor: e.fake, finished: map[string]int{}}
		ir := compilePipeline(t, map[string]string{
			"pipeline.yaml": "name: collect\ntasks:\n  work: {component: c.yaml, cache: false}\n",
			"c.yaml":        "name: c\noutputs: [{name: n, type: Integer}]\nimplementation: {container: {image: x, command: [c], args: [{outputPath: n}]}}\n",
		})
		res, _ := e.run(t.Context(), ir, nil, func(o *runner.Options) { o.Executor = col })
		if res == nil || res.State != runner.Failed {
			t.Fatalf("first run: %+v", res)
		}
		col.finished["work"] = 1
		col.mismatch = mismatch
		res2, err := e.run(t.Context(), ir, nil, func(o *runner.Options) { o.Executor = col; o.Resume = true; o.RunID = res.RunID })
		rec := e.hist.task(t, res.RunID, "work")
		if !mismatch {
			if err != nil || res2.State != runner.Succeeded {
				t.Fatalf("resume: %v", err)
			}
			if runs != 1 || len(col.collected) != 1 || rec.Attempts != 1 || rec.Outputs.Parameters["n"] != float64(41) {
				t.Errorf("ran %d times, collected %v, attempts %d, outputs %v: want the attempt collected", runs, col.collected, rec.Attempts, rec.Outputs.Parameters)
			}
			continue
		}
		// Not the same attempt: it runs again, its stale output removed
		// first, so the task fails for want of output.
		if runs != 2 || len(col.collected) != 0 || rec.State != runner.Failed {
			t.Errorf("mismatch: ran %d times, collected %v, state %s (err %v)", runs, col.collected, rec.State, err)
		}
	}
}
