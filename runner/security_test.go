package runner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/runner"
)

const oneTaskIR = `pipelineInfo: {name: p}
schemaVersion: 2.1.0
deploymentSpec:
  executors:
    exec-a: {container: {image: busybox, command: [sh, -c, "true"]}}
components:
  comp-a:
    executorLabel: exec-a
    outputDefinitions:
      parameters:
        out: {parameterType: STRING}
root:
  dag:
    tasks:
      a: {taskInfo: {name: a}, componentRef: {name: comp-a}}
`

// An IR that reached the runner without the loader's name checks (a Go
// caller, say) still cannot make it create or use a directory outside the
// run: the task fails and nothing is written outside.
func TestSecurityRunnerRefusesEscapingTaskKey(t *testing.T) {
	for _, key := range []string{"../../../../victim", "..", "/abs", "sub/s"} {
		t.Run(key, func(t *testing.T) {
			e := newEnv(t, nil)
			ir := loadIR(t, oneTaskIR)
			tasks := ir.Spec.GetRoot().GetDag().GetTasks()
			tasks[key] = tasks["a"]
			delete(tasks, "a")
			res, _ := e.run(t.Context(), ir, nil)
			if res == nil {
				t.Fatal("no result")
			}
			if res.State != runner.Failed || len(e.fake.order) != 0 {
				t.Errorf("state %s, ran %v; want FAILED without running", res.State, e.fake.order)
			}
			// Nothing was created beside the test's state directory.
			entries, _ := os.ReadDir(filepath.Dir(e.dir))
			for _, en := range entries {
				if en.Name() != filepath.Base(e.dir) {
					t.Errorf("created %s outside the state directory", en.Name())
				}
			}
			if _, err := os.Stat(filepath.Join(e.dir, "victim")); err == nil {
				t.Error("victim directory created")
			}
		})
	}
}

// A DAG component that contains itself, run without validation, stops at
// the nesting limit with a clear failure instead of expanding forever.
func TestSecurityRunnerBoundsSelfReferencingDAG(t *testing.T) {
	src := strings.Replace(oneTaskIR, "components:\n", `components:
  comp-self:
    dag:
      tasks:
        again: {taskInfo: {name: again}, componentRef: {name: comp-self}}
`, 1)
	src = strings.Replace(src, "a: {taskInfo: {name: a}, componentRef: {name: comp-a}}", "a: {taskInfo: {name: a}, componentRef: {name: comp-self}}", 1)
	e := newEnv(t, nil)
	ir := loadIRUnvalidated(t, src)
	res, _ := e.run(t.Context(), ir, nil)
	if res == nil || res.State != runner.Failed {
		t.Fatalf("result = %+v, want FAILED", res)
	}
	found := false
	for _, ev := range e.events {
		if strings.Contains(ev.Message, "nesting deeper than 64") {
			found = true
		}
	}
	if !found {
		t.Errorf("no event names the nesting limit: %+v", e.events[len(e.events)-1])
	}
}

// loadIRUnvalidated loads IR without ValidateIR, as a Go caller might.
func loadIRUnvalidated(t *testing.T, src string) *kfpir.IR {
	t.Helper()
	ir, err := kfpir.LoadIRBytes("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("load IR: %v", err)
	}
	return ir
}

// A step's output parameter over the limit fails the task with the limit
// named, instead of growing mlpipe and the history without bound; its log
// keeps the first MaxLogBytes with a marker; its escape sequences reach the
// terminal escaped.
func TestSecurityStepOutputLimits(t *testing.T) {
	e := newEnv(t, map[string]behavior{
		"a": func(_ context.Context, w *taskIO) int {
			fmt.Fprint(w.task.Stdout, "\x1b[2Jcleared\n"+strings.Repeat("x", 5000)+"\n")
			w.setParam("out", strings.Repeat("p", 2000))
			return 0
		},
	})
	var term strings.Builder
	ir := loadIR(t, oneTaskIR)
	res, _ := e.run(t.Context(), ir, nil, func(o *runner.Options) {
		o.MaxParamBytes, o.MaxLogBytes = 1000, 1000
		o.Output = &term
	})
	if res == nil || res.State != runner.Failed {
		t.Fatalf("result %+v, want FAILED", res)
	}
	rec := e.hist.task(t, res.RunID, "a")
	if !strings.Contains(rec.Error, "output parameter out") || !strings.Contains(rec.Error, "over the limit of 1000B") || !strings.Contains(rec.Error, "limits.output_parameter") {
		t.Errorf("task error = %q", rec.Error)
	}
	log, err := os.ReadFile(filepath.Join(e.dir, "runs", res.RunID, "a", "attempt-1.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(log) > 1200 || !strings.Contains(string(log), "[mlpipe: log capped at 1000B") || !strings.Contains(string(log), "bytes of output dropped]") {
		t.Errorf("log is %d bytes:\n%.300q", len(log), log)
	}
	if strings.Contains(term.String(), "\x1b") || !strings.Contains(term.String(), `a | \x1b[2Jcleared`) {
		t.Errorf("terminal output %.100q", term.String())
	}
}

// A consumer that changes its input artifact in place (the process
// executor with the local store reads inputs where they are stored) is
// caught before the next consumer, which fails clearly instead of reading
// other content under the producer's digest. A consumer that only touched
// the file (same content) does not fail anything.
func TestSecurityInputChangedInPlaceIsDetected(t *testing.T) {
	comp := func(in, out bool) string {
		s := "implementation: {container: {image: busybox, command: [sh]}}\n"
		if in {
			s = "inputs: [{name: data, type: Dataset}]\n" + s
		}
		if out {
			s = "outputs: [{name: data, type: Dataset}]\n" + s
		}
		return "name: c\n" + s
	}
	for _, tc := range []struct {
		name    string
		change  func(path string) error
		wantErr bool
	}{
		{"content changed", func(p string) error { return os.WriteFile(p, []byte("tampered"), 0o644) }, true},
		{"only touched", func(p string) error { return os.WriteFile(p, []byte("original"), 0o644) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]behavior{
				"make": func(_ context.Context, w *taskIO) int { w.writeArtifact("data", "original"); return 0 },
				"first": func(_ context.Context, w *taskIO) int {
					if err := tc.change(w.in.Inputs.Artifacts["data"].Artifacts[0].URI); err != nil {
						t.Error(err)
					}
					return 0
				},
				"second": func(_ context.Context, w *taskIO) int { return 0 },
			})
			ir := compilePipeline(t, map[string]string{
				"make.yaml": comp(false, true), "use.yaml": comp(true, false),
				"pipeline.yaml": `
name: inplace
tasks:
  make: {component: make.yaml}
  first: {component: use.yaml, inputs: {data: "${{ tasks.make.outputs.data }}"}}
  second: {component: use.yaml, inputs: {data: "${{ tasks.make.outputs.data }}"}, after: [first]}
`})
			res, _ := e.run(t.Context(), ir, nil)
			if res == nil {
				t.Fatal("no result")
			}
			second := e.hist.task(t, res.RunID, "second")
			if !tc.wantErr {
				if res.State != runner.Succeeded {
					t.Errorf("state %s (%s)", res.State, second.Error)
				}
				return
			}
			if res.State != runner.Failed || second.State != runner.Failed || !strings.Contains(second.Error, "was changed after it was recorded") {
				t.Errorf("run %s, second %s: %q", res.State, second.State, second.Error)
			}
			if e.fake.count("second") != 0 {
				t.Error("the second consumer ran on the changed input")
			}
		})
	}
}

// A step (process executor, local store) that replaces the directory of its
// outputs with a link to elsewhere cannot make mlpipe record or read what
// lies there: the task fails.
func TestSecurityOutputParentReplacedByLink(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "data"), []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, map[string]behavior{
		"make": func(_ context.Context, w *taskIO) int {
			out := w.in.Outputs.Artifacts["data"].Artifacts[0].URI
			parent := filepath.Dir(out)
			if err := os.RemoveAll(parent); err != nil {
				t.Error(err)
			}
			if err := os.Symlink(outside, parent); err != nil {
				t.Error(err)
			}
			return 0
		},
	})
	ir := compilePipeline(t, map[string]string{
		"make.yaml":     "name: make\noutputs: [{name: data, type: Dataset}]\nimplementation: {container: {image: busybox, command: [sh]}}\n",
		"pipeline.yaml": "name: link\ntasks:\n  make: {component: make.yaml}\n",
	})
	res, _ := e.run(t.Context(), ir, nil)
	if res == nil || res.State != runner.Failed {
		t.Fatalf("result %+v, want FAILED", res)
	}
	rec := e.hist.task(t, res.RunID, "make")
	if len(rec.Outputs.Artifacts["data"]) != 0 {
		t.Errorf("recorded %+v through the link", rec.Outputs.Artifacts)
	}
	t.Logf("error: %s", rec.Error)
}

// TestWorkspaceIsCreatedAndMounted: a step that names {{$.workspace_path}}
// finds the run's workspace there, shared with the run's other tasks and
// mounted read-write into a container at the same path.
func TestWorkspaceIsCreatedAndMounted(t *testing.T) {
	var mounts []runner.Mount
	e := newEnv(t, map[string]behavior{
		"first": func(_ context.Context, w *taskIO) int {
			if err := os.WriteFile(filepath.Join(w.task.Args[0], "shared"), []byte("from first"), 0o644); err != nil {
				t.Error(err)
			}
			mounts = w.task.Mounts
			return 0
		},
		"second": func(_ context.Context, w *taskIO) int {
			if b, err := os.ReadFile(filepath.Join(w.task.Args[0], "shared")); err != nil || string(b) != "from first" {
				t.Errorf("second read %q, %v", b, err)
			}
			return 0
		},
	})
	e.fake.name = "docker"
	comp := "name: ws\nimplementation: {container: {image: busybox, command: [sh], args: ['{{$.workspace_path}}']}}\n"
	ir := compilePipeline(t, map[string]string{"ws.yaml": comp, "pipeline.yaml": "name: ws\ntasks:\n  first: {component: ws.yaml}\n  second: {component: ws.yaml, after: [first]}\n"})
	res, err := e.run(t.Context(), ir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(e.dir, "runs", res.RunID, "workspace")
	found := false
	for _, m := range mounts {
		if m.HostPath == ws && m.ContainerPath == ws && !m.ReadOnly {
			found = true
		}
	}
	if !found {
		t.Errorf("the workspace %s is not mounted read-write: %+v", ws, mounts)
	}
}

// A cached local artifact changed in place after its run (same size, so
// the size check of the cache passes) is caught when a later run's
// consumer uses it.
func TestSecurityChangedCachedLocalArtifactIsCaught(t *testing.T) {
	var produced string
	e := newEnv(t, map[string]behavior{
		"make": func(_ context.Context, w *taskIO) int {
			w.writeArtifact("data", "original")
			produced = w.in.Outputs.Artifacts["data"].Artifacts[0].URI
			return 0
		},
		"use": func(_ context.Context, w *taskIO) int { return 0 },
	})
	ir := compilePipeline(t, map[string]string{
		"make.yaml":     "name: make\noutputs: [{name: data, type: Dataset}]\nimplementation: {container: {image: busybox, command: [sh]}}\n",
		"use.yaml":      "name: use\ninputs: [{name: data, type: Dataset}]\nimplementation: {container: {image: busybox, command: [sh]}}\n",
		"pipeline.yaml": "name: cached\ntasks:\n  make: {component: make.yaml}\n  use: {component: use.yaml, inputs: {data: \"${{ tasks.make.outputs.data }}\"}, cache: false}\n",
	})
	if _, err := e.run(t.Context(), ir, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(produced, []byte("tampered"), 0o644); err != nil { // same size
		t.Fatal(err)
	}
	res, _ := e.run(t.Context(), ir, nil)
	if res == nil || res.State != runner.Failed {
		t.Fatalf("second run %+v, want FAILED", res)
	}
	if use := e.hist.task(t, res.RunID, "use"); !strings.Contains(use.Error, "was changed after it was recorded") {
		t.Errorf("use: %s %q", use.State, use.Error)
	}
	if e.hist.task(t, res.RunID, "make").State != runner.Cached {
		t.Error("the producer was not a cache hit: the test does not test the cached path")
	}
}
