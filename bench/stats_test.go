package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mlpipe/mlpipe/runner"
)

func TestCompute(t *testing.T) {
	s := Compute([]float64{4, 1, 3, 2, 5})
	want := Stats{N: 5, Min: 1, Median: 3, P95: 4.8, Mean: 3, StdDev: math.Sqrt(2.5)}
	if s.N != want.N || s.Min != want.Min || s.Median != want.Median || math.Abs(s.P95-want.P95) > 1e-9 || s.Mean != want.Mean || math.Abs(s.StdDev-want.StdDev) > 1e-9 {
		t.Errorf("Compute = %+v, want %+v", s, want)
	}
	if cv := s.StdDev / 3; math.Abs(s.CV-cv) > 1e-12 {
		t.Errorf("CV = %v", s.CV)
	}
	if one := Compute([]float64{7}); one.Median != 7 || one.P95 != 7 || one.StdDev != 0 {
		t.Errorf("one sample: %+v", one)
	}
	if empty := Compute(nil); empty.N != 0 {
		t.Errorf("empty: %+v", empty)
	}
}

func noisy(center, spread float64, n int, seed int) []float64 {
	out := make([]float64, n)
	for i := range out {
		// Deterministic pseudo-noise in [-spread, spread].
		out[i] = center + spread*math.Sin(float64(i*7919+seed))
	}
	return out
}

func TestCompareFindsRealShiftsOnly(t *testing.T) {
	base := noisy(100, 2, 20, 1)
	slower := noisy(120, 2, 20, 2)
	same := noisy(100, 2, 20, 3)
	c := Compare(base, slower, 2000, 1)
	if c.Pct < 15 || c.Pct > 25 || !c.Significant() || c.Low <= 0 {
		t.Errorf("20%% slower: %+v", c)
	}
	c = Compare(base, same, 2000, 1)
	if c.Significant() {
		t.Errorf("same distribution reported as a change: %+v", c)
	}
}

func TestCompareResultsRegression(t *testing.T) {
	mk := func(center float64) *Result {
		return &Result{Tasks: []TaskResult{{Name: "train", Phases: map[string]Stats{"execute": Compute(noisy(center, 1, 10, 5))}}}}
	}
	ch := CompareResults(mk(100), mk(130), 10)
	if len(ch) != 1 || !ch[0].Regressed {
		t.Fatalf("30%% slower with a 10%% budget: %+v", ch)
	}
	if ch := CompareResults(mk(100), mk(105), 10); ch[0].Regressed {
		t.Errorf("5%% slower with a 10%% budget flagged: %+v", ch)
	}
	var b bytes.Buffer
	WriteComparison(&b, CompareResults(mk(100), mk(130), 10), 10)
	if !strings.Contains(b.String(), "REGRESSION") {
		t.Errorf("comparison output:\n%s", b.String())
	}
}

func TestCollectUsesExecutorTimestamps(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	runs := []RunData{{
		Tasks: []*runner.TaskRecord{
			{Path: "train", Name: "train", Kind: "container", State: runner.Succeeded},
			{Path: "cached", Name: "cached", Kind: "container", State: runner.Cached},
		},
		Attempts: []*runner.AttemptRecord{
			{TaskPath: "train", Attempt: 1, StartedAt: at(0), FinishedAt: at(50), Error: "failed"},
			{TaskPath: "train", Attempt: 2, StartedAt: at(100), FinishedAt: at(450), Phases: []runner.Phase{
				{Name: "queue", Start: at(90), End: at(100)}, {Name: "execute", Start: at(110), End: at(410)}, {Name: "collect", Start: at(410), End: at(440)}},
				GPUSamples: []runner.GPUSample{{Util: 50, MemUsed: 1 << 30, EnergyJ: 3}, {Util: 90, MemUsed: 2 << 30, EnergyJ: 9}}},
		},
	}}
	got := Collect(runs)
	if len(got) != 1 || got[0].Name != "train" {
		t.Fatalf("Collect = %+v (cached tasks must not count)", got)
	}
	ph := got[0].Phases
	if ph["execute"].Median != 300 || ph["queue"].Median != 10 || ph["collect"].Median != 30 || ph["total"].Median != 360 {
		t.Errorf("phases = %+v", ph)
	}
	g := got[0].GPU
	if g == nil || g.UtilMean.Median != 70 || g.UtilMax.Median != 90 || g.MemPeakB.Median != 2<<30 || g.EnergyJ.Median != 9 {
		t.Errorf("gpu = %+v", g)
	}
}

func TestReportsAreSelfContained(t *testing.T) {
	t0 := time.Now()
	run := &runner.RunRecord{ID: "r1", Pipeline: "p", StartedAt: t0, FinishedAt: t0.Add(time.Second)}
	tasks := []*runner.TaskRecord{{Path: "a", Name: "a", State: runner.Succeeded}}
	ats := []*runner.AttemptRecord{{TaskPath: "a", Attempt: 1, StartedAt: t0, FinishedAt: t0.Add(500 * time.Millisecond), GPUs: []string{"GPU-1"},
		Phases: []runner.Phase{{Name: "execute", Start: t0.Add(10 * time.Millisecond), End: t0.Add(490 * time.Millisecond)}}}}
	svg := TimelineSVG(run, tasks, ats)
	if !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("GPU-1")) || !bytes.Contains(svg, []byte(`fill="#1f77b4"`)) {
		t.Errorf("timeline SVG:\n%s", svg)
	}
	r := &Result{Pipeline: "p<x>", Repeat: 1, Tasks: []TaskResult{{Name: "a", Phases: map[string]Stats{"execute": Compute([]float64{480})}}}}
	var b bytes.Buffer
	if err := WriteHTML(&b, r, svg); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, bad := range []string{"<script src", "<link", "https://", "@import"} {
		if strings.Contains(h, bad) {
			t.Errorf("report refers to an external resource (%s)", bad)
		}
	}
	if !strings.Contains(h, "p&lt;x&gt;") {
		t.Error("pipeline name not escaped")
	}
}

func TestCollectNotRun(t *testing.T) {
	skip := func(run string, state runner.State, why string) RunData {
		return RunData{RunID: run, Tasks: []*runner.TaskRecord{
			{Path: "train", Name: "train", Kind: "container", State: runner.Succeeded},
			{Path: "condition-1", Name: "condition-1", Kind: "dag", State: state, Error: why},
			{Path: "condition-1/publish", Name: "publish", Kind: "container", State: state, Error: "in condition-1: " + why},
		}}
	}
	ran := RunData{RunID: "r3", Tasks: []*runner.TaskRecord{{Path: "condition-1/publish", Name: "publish", Kind: "container", State: runner.Succeeded}}}
	got := CollectNotRun([]RunData{skip("r1", runner.Skipped, "condition a (1) > b (2) is false"), ran, skip("r2", runner.Canceled, "run cancelled")})
	want := []NotRun{{Name: "publish", Runs: 2, State: runner.Canceled, Reason: "in condition-1: run cancelled"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CollectNotRun (-want +got):\n%s", diff)
	}
	r := &Result{Pipeline: "p", Repeat: 3, Runs: []string{"r1", "r2", "r3"}, NotRun: got}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if line := "not run: publish canceled in 2 of 3 run(s): in condition-1: run cancelled\n"; !strings.Contains(b.String(), line) {
		t.Errorf("table lacks %q:\n%s", line, b.String())
	}
	r.NotRun = []NotRun{{Name: "publish", Runs: 1, State: runner.Skipped, Reason: "condition a (\x1b[2Jx) > 1 is false"}}
	b.Reset()
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Errorf("a step's escape sequence reached the table: %q", b.String())
	}
}
