package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

type benchJSON struct {
	Tasks []struct {
		Name   string `json:"name"`
		Phases map[string]struct {
			N       int       `json:"n"`
			Median  float64   `json:"median_ms"`
			StdDev  float64   `json:"stddev_ms"`
			Samples []float64 `json:"samples_ms"`
		} `json:"phases"`
	} `json:"tasks"`
	Runs []string `json:"runs"`
}

const napPipeline = `
name: nap
tasks:
  prep: {component: echo.yaml, inputs: {msg: ready}}
  nap: {component: nap.yaml, after: [prep]}
  after: {component: echo.yaml, inputs: {msg: done}, after: [nap]}
`

const napComponent = `
name: nap
implementation: {container: {image: busybox, command: [sleep, "0.3"]}}
`

// TestBenchMeasuresExecutionTime: the execution phase of a step that
// sleeps 300 ms measures 300 ms within 5 %, widened by the spread measured
// on this machine (three median absolute deviations), not a fixed timing
// assertion.
func TestBenchMeasuresExecutionTime(t *testing.T) {
	c := newCLI(t)
	dir := writeFiles(t, withComponents(map[string]string{"pipeline.yaml": napPipeline, "nap.yaml": napComponent}))
	r := c.run("bench", dir, "--repeat", "5", "--warmup", "1", "--output", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var res benchJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(res.Runs) != 5 || len(res.Tasks) != 3 {
		t.Fatalf("%d runs, %d tasks", len(res.Runs), len(res.Tasks))
	}
	for _, tk := range res.Tasks {
		if tk.Name != "nap" {
			continue
		}
		ex := tk.Phases["execute"]
		if ex.N != 5 {
			t.Fatalf("execute phase has %d samples", ex.N)
		}
		tol := math.Max(0.05*300, 3*mad(ex.Samples))
		if math.Abs(ex.Median-300) > tol {
			t.Errorf("execute median %.1f ms for a 300 ms sleep (tolerance %.1f ms, samples %v)", ex.Median, tol, ex.Samples)
		}
		if total := tk.Phases["total"].Median; total < ex.Median {
			t.Errorf("total %.1f ms is less than execute %.1f ms", total, ex.Median)
		}
	}
	// The baseline is reused: --task benchmarks nap alone (prep is cached,
	// after is not run), and a baseline of a much faster nap is a
	// regression (exit 3).
	base := filepath.Join(t.TempDir(), "base.json")
	fast := strings.NewReplacer(`"median_ms":`, `"median_ms":`).Replace(r.stdout)
	var raw map[string]any
	_ = json.Unmarshal([]byte(fast), &raw)
	for _, tk := range raw["tasks"].([]any) {
		ph := tk.(map[string]any)["phases"].(map[string]any)
		ex := ph["execute"].(map[string]any)
		ex["samples_ms"] = []any{10.0, 10.5, 9.5, 10.2, 9.8}
		ex["median_ms"] = 10.0
	}
	b, _ := json.Marshal(raw)
	if err := os.WriteFile(base, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r2 := c.run("bench", dir, "--task", "nap", "--repeat", "5", "--warmup", "0", "--compare", base, "--max-regression", "20", "--report", filepath.Join(t.TempDir(), "r.html"))
	if r2.code != 3 {
		t.Fatalf("regression: exit %d, want 3\n%s\n%s", r2.code, r2.stdout, r2.stderr)
	}
	if !strings.Contains(r2.stdout, "REGRESSION") {
		t.Errorf("--task output:\n%s", r2.stdout)
	}
	for _, line := range strings.Split(r2.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 1 && (f[0] == "prep" || f[0] == "after") && f[1] == "total" {
			t.Errorf("--task nap measured %s too:\n%s", f[0], r2.stdout)
		}
	}
	if r3 := c.run("bench", dir, "--task", "nope"); r3.code != 2 {
		t.Errorf("unknown --task: exit %d", r3.code)
	}
}

func mad(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	d := make([]float64, len(s))
	for i, x := range s {
		d[i] = math.Abs(x - med)
	}
	sort.Float64s(d)
	return d[len(d)/2]
}

func TestRunsShowTimeline(t *testing.T) {
	c := newCLI(t)
	r := c.mustRun("run", "pipelines/quickstart")
	runID := strings.Fields(lastLineWith(r.stdout, "SUCCEEDED in"))[1]
	svg := filepath.Join(t.TempDir(), "t.svg")
	c.mustRun("runs", "show", runID, "--timeline", svg)
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "greet", "count", "execute"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
}
