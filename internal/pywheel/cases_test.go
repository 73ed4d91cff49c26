package pywheel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// componentCases are the lightweight components run by the Python tests
// (sources in testdata/), with hand-written ExecutorInputs and the
// ExecutorOutput the KFP 2.x executor writes for them.
type componentCase struct {
	file, function string
	// setup writes inputs under root and returns the ExecutorInput.
	setup func(t *testing.T, root string) map[string]any
	// check asserts the results (output JSON at root/task/executor_output.json).
	check func(t *testing.T, r *pyRun, root string)
}

func componentCases() []componentCase {
	taskOutputs := func(root string, params []string, arts map[string]any) map[string]any {
		p := map[string]any{}
		for _, name := range params {
			p[name] = map[string]any{"outputFile": filepath.Join(root, "task", name)}
		}
		out := map[string]any{"outputFile": filepath.Join(root, "task", "executor_output.json")}
		if len(p) > 0 {
			out["parameters"] = p
		}
		if len(arts) > 0 {
			out["artifacts"] = arts
		}
		return out
	}
	writeInput := func(t *testing.T, root, name, content string) string {
		t.Helper()
		p := filepath.Join(root, "producer", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	output := func(root string) string { return filepath.Join(root, "task", "executor_output.json") }
	return []componentCase{{
		file: "train.py", function: "train",
		setup: func(t *testing.T, root string) map[string]any {
			data := writeInput(t, root, "data", "a\nb\nc\n")
			return map[string]any{
				"inputs": map[string]any{
					"parameterValues": map[string]any{"n": 3, "scale": 2},
					"artifacts":       map[string]any{"data": artifact("data", "system.Dataset", data, map[string]any{"rows": 3})},
				},
				"outputs": taskOutputs(root, []string{"Output"}, map[string]any{
					"model": artifact("model", "system.Dataset", filepath.Join(root, "task", "model"), map[string]any{}),
				}),
			}
		},
		check: func(t *testing.T, r *pyRun, root string) {
			want := map[string]any{
				"parameterValues": map[string]any{"Output": 45},
				"artifacts":       artifact("", "", "", nil)["artifacts"], // replaced below
			}
			want["artifacts"] = map[string]any{"model": artifact("model", "", filepath.Join(root, "task", "model"),
				map[string]any{"rows": 3, "source": filepath.Join(root, "producer", "data")})}
			if diff := cmp.Diff(jsonValue(t, want), readJSON(t, output(root))); diff != "" {
				t.Errorf("executor output (-want +got):\n%s", diff)
			}
			wantModel := "rows=3 n=3 answer=42 kfp=2.7.0 scale=2.0 input=Dataset\n"
			if diff := cmp.Diff(wantModel, readFile(t, filepath.Join(root, "task", "model"))); diff != "" {
				t.Errorf("model artifact (-want +got):\n%s", diff)
			}
		},
	}, {
		file: "stats.py", function: "stats",
		setup: func(t *testing.T, root string) map[string]any {
			text := writeInput(t, root, "text", "1 2\n3 6\n")
			return map[string]any{
				"inputs": map[string]any{
					"parameterValues": map[string]any{"tags": []any{"x", "y"}, "cfg": map[string]any{"b": 2, "a": 1}},
					"artifacts":       map[string]any{"text": artifact("text", "system.Dataset", text, map[string]any{})},
				},
				"outputs": taskOutputs(root, []string{"summary", "count", "mean", "label"}, map[string]any{
					"metrics": artifact("metrics", "system.Metrics", filepath.Join(root, "task", "metrics"), map[string]any{}),
					"report":  artifact("report", "system.Markdown", filepath.Join(root, "task", "report"), map[string]any{"k": "v"}),
				}),
			}
		},
		check: func(t *testing.T, r *pyRun, root string) {
			want := map[string]any{
				"parameterValues": map[string]any{"count": 4, "mean": 3.0, "label": "x"},
				"artifacts": map[string]any{
					"metrics": artifact("metrics", "", filepath.Join(root, "task", "metrics"), map[string]any{"mean": 3.0, "count": 4}),
					"report":  artifact("report", "", filepath.Join(root, "task", "report"), map[string]any{"k": "v"}),
				},
			}
			if diff := cmp.Diff(jsonValue(t, want), readJSON(t, output(root))); diff != "" {
				t.Errorf("executor output (-want +got):\n%s", diff)
			}
			if got, want := readFile(t, filepath.Join(root, "task", "summary")), "4 values, tags=x,y, cfg=[('a', 1), ('b', 2)], flag=False"; got != want {
				t.Errorf("summary = %q, want %q", got, want)
			}
			if got, want := readFile(t, filepath.Join(root, "task", "report")), "# mean 3.0\n"; got != want {
				t.Errorf("report = %q, want %q", got, want)
			}
		},
	}, {
		file: "make.py", function: "make",
		setup: func(t *testing.T, root string) map[string]any {
			return map[string]any{
				"inputs": map[string]any{"parameterValues": map[string]any{"text": "hello"}},
				"outputs": taskOutputs(root, nil, map[string]any{
					"Output": artifact("Output", "system.Dataset", filepath.Join(root, "task", "Output"), map[string]any{}),
				}),
			}
		},
		check: func(t *testing.T, r *pyRun, root string) {
			// As in the SDK outside Vertex AI, a returned artifact keeps its own (empty) name.
			want := map[string]any{"artifacts": map[string]any{
				"Output": artifact("", "", filepath.Join(root, "task", "custom"), map[string]any{"chars": 5}),
			}}
			if diff := cmp.Diff(jsonValue(t, want), readJSON(t, output(root))); diff != "" {
				t.Errorf("executor output (-want +got):\n%s", diff)
			}
			if got := readFile(t, filepath.Join(root, "task", "custom")); got != "hello" {
				t.Errorf("returned artifact content = %q, want hello", got)
			}
		},
	}, {
		file: "noop.py", function: "noop",
		setup: func(t *testing.T, root string) map[string]any {
			return map[string]any{"inputs": map[string]any{}, "outputs": taskOutputs(root, nil, nil)}
		},
		check: func(t *testing.T, r *pyRun, root string) {
			if diff := cmp.Diff(map[string]any{}, readJSON(t, output(root))); diff != "" {
				t.Errorf("executor output (-want +got):\n%s", diff)
			}
			if got := strings.TrimSpace(r.stdout); got != "default message" {
				t.Errorf("stdout = %q, want the Python default of the unset input", got)
			}
		},
	}, {
		file: "final.py", function: "final",
		setup: func(t *testing.T, root string) map[string]any {
			status := map[string]any{"state": "FAILED", "pipelineJobResourceName": "run-1",
				"pipelineTaskName": "exit-handler-1", "error": map[string]any{"code": 2, "message": "oops"}}
			return map[string]any{"inputs": map[string]any{"parameterValues": map[string]any{"status": status}},
				"outputs": taskOutputs(root, []string{"Output"}, nil)}
		},
		check: func(t *testing.T, r *pyRun, root string) {
			want := map[string]any{"parameterValues": map[string]any{"Output": "FAILED run-1 exit-handler-1 2 oops None"}}
			if diff := cmp.Diff(jsonValue(t, want), readJSON(t, output(root))); diff != "" {
				t.Errorf("executor output (-want +got):\n%s", diff)
			}
		},
	}, {
		file: "boom.py", function: "boom",
		setup: func(t *testing.T, root string) map[string]any {
			return map[string]any{"inputs": map[string]any{"parameterValues": map[string]any{"x": 7}},
				"outputs": taskOutputs(root, nil, nil)}
		},
		check: func(t *testing.T, r *pyRun, root string) {
			if !strings.Contains(r.stderr, "ValueError: boom 7") {
				t.Errorf("stderr lacks the Python error:\n%s", r.stderr)
			}
			if _, err := os.Stat(output(root)); !os.IsNotExist(err) {
				t.Errorf("failed component wrote its executor output (stat: %v)", err)
			}
		},
	}}
}
