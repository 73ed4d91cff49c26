package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/internal/termsafe"
)

// PhaseOrder is the order phases are shown in.
var PhaseOrder = []string{"total", "queue", "image", "stage_in", "create", "start", "execute", "collect", "teardown"}

// Result is a benchmark: every measured task of the kept runs.
type Result struct {
	Pipeline string       `json:"pipeline"`
	Date     time.Time    `json:"date"`
	Machine  Machine      `json:"machine"`
	Executor string       `json:"executor"`
	Repeat   int          `json:"repeat"`
	Warmup   int          `json:"warmup"`
	Target   string       `json:"task,omitempty"`
	Runs     []string     `json:"runs"`
	Tasks    []TaskResult `json:"tasks"`
	NotRun   []NotRun     `json:"not_run,omitempty"`
}

// NotRun is a step that did not run in some of the kept runs (skipped by
// a condition, after a failure, ...), with the last reason recorded.
type NotRun struct {
	Name   string         `json:"name"`
	Runs   int            `json:"runs"` // in how many of the kept runs
	State  contract.State `json:"state"`
	Reason string         `json:"reason"`
}

// CollectNotRun lists the steps that did not run in the runs, in the order
// of their paths.
func CollectNotRun(runs []RunData) []NotRun {
	by := map[string]*NotRun{}
	var order []string
	for _, rd := range runs {
		for _, t := range rd.Tasks {
			if t.Kind == "dag" || (t.State != contract.Skipped && t.State != contract.Canceled) {
				continue
			}
			n := by[t.Name]
			if n == nil {
				n = &NotRun{Name: t.Name}
				by[t.Name] = n
				order = append(order, t.Name)
			}
			n.Runs++
			n.State, n.Reason = t.State, t.Error
		}
	}
	out := make([]NotRun, 0, len(order))
	for _, name := range order {
		out = append(out, *by[name])
	}
	return out
}

// Machine describes where a benchmark ran.
type Machine struct {
	Host string   `json:"host"`
	OS   string   `json:"os"`
	Arch string   `json:"arch"`
	CPUs int      `json:"cpus"`
	GPUs []string `json:"gpus,omitempty"`
}

// ThisMachine describes the current machine.
func ThisMachine(gpus []string) Machine {
	host, _ := os.Hostname()
	return Machine{Host: host, OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GPUs: gpus}
}

// TaskResult is one task's measurements across runs.
type TaskResult struct {
	Name   string           `json:"name"`
	Phases map[string]Stats `json:"phases"`
	GPU    *GPUStats        `json:"gpu,omitempty"`
}

// GPUStats summarises the GPU samples of a task's attempts.
type GPUStats struct {
	UtilMean Stats `json:"util_mean_pct"`
	UtilMax  Stats `json:"util_max_pct"`
	MemPeakB Stats `json:"mem_peak_bytes"`
	EnergyJ  Stats `json:"energy_j"`
}

// RunData is what the history holds about one run.
type RunData struct {
	RunID    string
	Tasks    []*contract.TaskRecord
	Attempts []*contract.AttemptRecord
}

// Collect builds per-task statistics from runs. Only tasks that really ran
// count (cached and skipped ones do not); the last attempt of each is used.
func Collect(runs []RunData) []TaskResult {
	type acc struct {
		first  time.Time
		phases map[string][]float64
		util   []float64
		umax   []float64
		mem    []float64
		energy []float64
		gpu    bool
	}
	by := map[string]*acc{}
	for _, rd := range runs {
		last := map[string]*contract.AttemptRecord{}
		for _, a := range rd.Attempts {
			if p := last[a.TaskPath]; p == nil || a.Attempt > p.Attempt {
				last[a.TaskPath] = a
			}
		}
		for _, t := range rd.Tasks {
			if t.Kind == "dag" || t.State != contract.Succeeded {
				continue
			}
			a := last[t.Path]
			if a == nil {
				continue
			}
			x := by[t.Name]
			if x == nil {
				x = &acc{first: a.StartedAt, phases: map[string][]float64{}}
				by[t.Name] = x
			}
			if a.StartedAt.Before(x.first) {
				x.first = a.StartedAt
			}
			sums := map[string]float64{}
			start, end := a.StartedAt, a.FinishedAt
			for _, p := range a.Phases {
				sums[p.Name] += ms(p.End.Sub(p.Start))
				if p.Start.Before(start) {
					start = p.Start
				}
				if p.End.After(end) {
					end = p.End
				}
			}
			sums["total"] = ms(end.Sub(start))
			for k, v := range sums {
				x.phases[k] = append(x.phases[k], v)
			}
			if len(a.GPUSamples) > 0 {
				x.gpu = true
				var sum, mx, mem, energy float64
				n := 0
				for _, s := range a.GPUSamples {
					if s.Util >= 0 {
						sum += s.Util
						mx = max(mx, s.Util)
						n++
					}
					mem = max(mem, float64(s.MemUsed))
					energy = max(energy, s.EnergyJ)
				}
				if n > 0 {
					x.util = append(x.util, sum/float64(n))
					x.umax = append(x.umax, mx)
				}
				x.mem = append(x.mem, mem)
				x.energy = append(x.energy, energy)
			}
		}
	}
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if !by[names[i]].first.Equal(by[names[j]].first) {
			return by[names[i]].first.Before(by[names[j]].first)
		}
		return names[i] < names[j]
	})
	var out []TaskResult
	for _, n := range names {
		x := by[n]
		tr := TaskResult{Name: n, Phases: map[string]Stats{}}
		for k, v := range x.phases {
			tr.Phases[k] = Compute(v)
		}
		if x.gpu {
			tr.GPU = &GPUStats{UtilMean: Compute(x.util), UtilMax: Compute(x.umax), MemPeakB: Compute(x.mem), EnergyJ: Compute(x.energy)}
		}
		out = append(out, tr)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func phases(tr TaskResult) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range PhaseOrder {
		if _, ok := tr.Phases[p]; ok {
			out = append(out, p)
			seen[p] = true
		}
	}
	var rest []string
	for p := range tr.Phases {
		if !seen[p] {
			rest = append(rest, p)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// Notes lists the measurements too spread to trust.
func (r *Result) Notes() []string {
	var out []string
	for _, t := range r.Tasks {
		for _, p := range []string{"execute", "total"} {
			s, ok := t.Phases[p]
			if !ok || s.Median < 1 {
				continue
			}
			if s.N < 5 {
				out = append(out, fmt.Sprintf("%s %s: only %d sample(s); use --repeat 5 or more for statistics", t.Name, p, s.N))
				break
			}
			if s.CV > 0.10 {
				out = append(out, fmt.Sprintf("%s %s: spread too wide to trust (CV %.0f%%); raise --repeat or quiet the machine", t.Name, p, 100*s.CV))
				break
			}
		}
	}
	return out
}

func fmtMS(v float64) string {
	switch {
	case v >= 60000:
		return (time.Duration(v) * time.Millisecond).Round(100 * time.Millisecond).String()
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 3, 64) + "s"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
}

// WriteTable prints the result for people.
func (r *Result) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "Benchmark of %s: %d run(s) after %d warm-up run(s), %s executor, %d CPUs", r.Pipeline, r.Repeat, r.Warmup, r.Executor, r.Machine.CPUs)
	if len(r.Machine.GPUs) > 0 {
		fmt.Fprintf(w, ", GPUs: %s", strings.Join(r.Machine.GPUs, ", "))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TASK\tPHASE\tN\tMIN\tMEDIAN\tP95\tMEAN\tSTDDEV\tCV\t")
	for _, t := range r.Tasks {
		for i, p := range phases(t) {
			s := t.Phases[p]
			name := ""
			if i == 0 {
				name = t.Name
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%.1f%%\t\n", name, p, s.N, fmtMS(s.Min), fmtMS(s.Median), fmtMS(s.P95), fmtMS(s.Mean), fmtMS(s.StdDev), 100*s.CV)
		}
		if g := t.GPU; g != nil {
			fmt.Fprintf(tw, "\tgpu util\t%d\tmean %.0f%%\tmax %.0f%%\tmem %.1f GiB\tenergy %.0f J\t\t\t\n", g.UtilMean.N, g.UtilMean.Median, g.UtilMax.Median, g.MemPeakB.Median/(1<<30), g.EnergyJ.Median)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.NotRun {
		// The reason quotes values steps wrote: escaped for the terminal.
		fmt.Fprintf(w, "not run: %s %s in %d of %d run(s): %s\n", termsafe.Escape(n.Name), strings.ToLower(string(n.State)), n.Runs, len(r.Runs), termsafe.Escape(n.Reason))
	}
	for _, n := range r.Notes() {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

// WriteJSON writes the baseline format.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteCSV writes one row per task and phase.
func (r *Result) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"task", "phase", "n", "min_ms", "median_ms", "p95_ms", "mean_ms", "stddev_ms", "cv"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, t := range r.Tasks {
		for _, p := range phases(t) {
			s := t.Phases[p]
			_ = cw.Write([]string{t.Name, p, strconv.Itoa(s.N), f(s.Min), f(s.Median), f(s.P95), f(s.Mean), f(s.StdDev), strconv.FormatFloat(s.CV, 'f', 4, 64)})
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadResult reads a baseline written with WriteJSON.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s is not a benchmark baseline (mlpipe bench --output json): %w", path, err)
	}
	return &r, nil
}

// TaskChange is one task's change against a baseline.
type TaskChange struct {
	Task   string
	Phase  string
	Change Change
	// Regressed is set when the median got slower by more than the
	// threshold and the interval excludes zero.
	Regressed bool
}

// CompareResults compares each task's execution phase (total when the
// task has none) with the baseline.
func CompareResults(base, cur *Result, maxRegressionPct float64) []TaskChange {
	idx := map[string]TaskResult{}
	for _, t := range base.Tasks {
		idx[t.Name] = t
	}
	var out []TaskChange
	for i, t := range cur.Tasks {
		b, ok := idx[t.Name]
		if !ok {
			continue
		}
		phase := "execute"
		if _, ok := t.Phases[phase]; !ok {
			phase = "total"
		}
		bs, cs := b.Phases[phase], t.Phases[phase]
		if bs.N == 0 || cs.N == 0 {
			continue
		}
		ch := Compare(bs.Samples, cs.Samples, 5000, uint64(i+1))
		tc := TaskChange{Task: t.Name, Phase: phase, Change: ch}
		tc.Regressed = maxRegressionPct >= 0 && ch.Pct > maxRegressionPct && ch.Low > 0
		out = append(out, tc)
	}
	return out
}

// WriteComparison prints changes against a baseline.
func WriteComparison(w io.Writer, changes []TaskChange, maxRegressionPct float64) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tPHASE\tBASELINE\tNOW\tCHANGE\t95% CI\t")
	for _, c := range changes {
		verdict := ""
		switch {
		case c.Regressed:
			verdict = fmt.Sprintf("REGRESSION (> %.0f%%)", maxRegressionPct)
		case c.Change.Significant() && c.Change.Pct < 0:
			verdict = "faster"
		case c.Change.Significant():
			verdict = "slower"
		default:
			verdict = "no significant change"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%+.1f%%\t[%+.1f%%, %+.1f%%]\t%s\n", c.Task, c.Phase, fmtMS(c.Change.Baseline), fmtMS(c.Change.Current), c.Change.Pct, c.Change.Low, c.Change.High, verdict)
	}
	tw.Flush()
}
