package compiler

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/pyfunc"
)

// Plan is how a run will unfold: executor tasks (loop iterations expanded
// where the items are known) in dependency stages.
type Plan struct {
	Pipeline     string         `json:"pipeline"`
	Parameters   map[string]any `json:"parameters"`
	Tasks        []*PlanTask    `json:"tasks"`
	Stages       [][]string     `json:"stages"`
	CriticalPath []string       `json:"critical_path"`
	Totals       PlanTotals     `json:"totals"`
	Notes        []string       `json:"notes,omitempty"`
	byID         map[string]*PlanTask
}

// PlanTask is one executor task of the plan.
type PlanTask struct {
	ID         string   `json:"id"`
	Path       string   `json:"path"`
	Name       string   `json:"name"`
	Component  string   `json:"component"`
	Image      string   `json:"image,omitempty"`
	Importer   bool     `json:"importer,omitempty"`
	CPU        float64  `json:"cpu,omitempty"`
	MemoryB    float64  `json:"memory_bytes,omitempty"`
	GPUs       int      `json:"gpus,omitempty"`
	GPUType    string   `json:"gpu_type,omitempty"`
	Deps       []string `json:"deps,omitempty"`
	Stage      int      `json:"stage"`
	Parallel   bool     `json:"parallel"`
	Conditions []string `json:"conditions,omitempty"`
	Exit       bool     `json:"exit,omitempty"`
	Iteration  string   `json:"iteration,omitempty"`
	Unexpanded bool     `json:"unexpanded_loop,omitempty"`
	Cache      bool     `json:"cache"`
	// Python is set for a KFP Python function component (pyfunc).
	Python *PlanPython `json:"python,omitempty"`
}

// PlanPython is what a Python function component installs, and whether
// it is installed ahead of the step already (mlpipe plan fills Prepared
// when it can ask the executor).
type PlanPython struct {
	Packages []string `json:"packages"`
	Indexes  []string `json:"indexes,omitempty"`
	// Prepared: "", "yes" or "no"; Ref names the derived image or the
	// virtual environment.
	Prepared string `json:"prepared,omitempty"`
	Ref      string `json:"ref,omitempty"`
}

// PlanTotals sums the resources of the plan; Peak* is the largest sum over
// one stage, what running a stage fully in parallel needs.
type PlanTotals struct {
	Tasks      int     `json:"tasks"`
	CPU        float64 `json:"cpu"`
	MemoryB    float64 `json:"memory_bytes"`
	GPUs       int     `json:"gpus"`
	PeakCPU    float64 `json:"peak_cpu"`
	PeakMemory float64 `json:"peak_memory_bytes"`
	PeakGPUs   int     `json:"peak_gpus"`
}

// MakePlan expands the IR into a plan for the given (resolved) parameters.
func MakePlan(ir *kfpir.IR, params map[string]any) (*Plan, error) {
	if n := kfpir.ExpandedTasks(ir.Spec); n > kfpir.MaxExpandedTasks {
		return nil, diag.Diagnostics{{File: ir.File, Path: "root", Msg: fmt.Sprintf("unfolds into more than %d tasks: refusing to plan it", kfpir.MaxExpandedTasks)}}
	}
	pl := &Plan{Pipeline: ir.Spec.GetPipelineInfo().GetName(), Parameters: params, byID: map[string]*PlanTask{}}
	x := &expander{ir: ir, plan: pl}
	if _, err := x.dag(ir.Spec.GetRoot(), "", params, nil, nil, 0); err != nil {
		return nil, err
	}
	pl.stage()
	return pl, nil
}

type expander struct {
	ir   *kfpir.IR
	plan *Plan
	n    int
}

// dag expands a DAG component; in are the leaf ids every task of it waits
// for; it returns the sink ids of the DAG (what its dependents wait for).
func (x *expander) dag(cs *pb.ComponentSpec, prefix string, known map[string]any, in []string, conds []string, depth int) ([]string, error) {
	if depth > kfpir.MaxNesting {
		return nil, fmt.Errorf("DAG nesting deeper than %d levels at %s", kfpir.MaxNesting, prefix)
	}
	tasks := cs.GetDag().GetTasks()
	order, err := topoOrder(tasks)
	if err != nil {
		return nil, err
	}
	sinks := map[string][]string{}
	dependedOn := map[string]bool{}
	for _, k := range order {
		for _, d := range kfpir.IRDependencies(tasks[k]) {
			dependedOn[d] = true
		}
	}
	for _, k := range order {
		t := tasks[k]
		deps := append([]string(nil), in...)
		for _, d := range kfpir.IRDependencies(t) {
			deps = append(deps, sinks[d]...)
		}
		path := k
		if prefix != "" {
			path = prefix + "/" + k
		}
		tconds := conds
		if c := t.GetTriggerPolicy().GetCondition(); c != "" {
			tconds = append(append([]string(nil), conds...), c)
		}
		exit := t.GetTriggerPolicy().GetStrategy() == pb.PipelineTaskSpec_TriggerPolicy_ALL_UPSTREAM_TASKS_COMPLETED
		comp := x.ir.Component(t.GetComponentRef().GetName())
		if comp == nil {
			return nil, fmt.Errorf("%s: unknown component %q", path, t.GetComponentRef().GetName())
		}
		innerKnown := knownInputs(t, known)
		var out []string
		switch {
		case comp.GetDag() != nil && (t.GetParameterIterator() != nil || t.GetArtifactIterator() != nil):
			items, ok := loopItems(t, innerKnown)
			if !ok {
				o, err := x.dag(comp, path+"[*]", innerKnown, deps, tconds, depth+1)
				if err != nil {
					return nil, err
				}
				for _, id := range o {
					x.plan.byID[id].Unexpanded = true
				}
				x.markUnexpanded(path + "[*]")
				out = o
				break
			}
			itemKey := t.GetParameterIterator().GetItemInput()
			for i, it := range items {
				k2 := copyMap(innerKnown)
				if itemKey != "" {
					k2[itemKey] = it
				}
				o, err := x.dag(comp, fmt.Sprintf("%s[%d]", path, i), k2, deps, tconds, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, o...)
			}
			if len(items) == 0 {
				x.plan.Notes = append(x.plan.Notes, fmt.Sprintf("%s loops over zero items", path))
			}
		case comp.GetDag() != nil:
			o, err := x.dag(comp, path, innerKnown, deps, tconds, depth+1)
			if err != nil {
				return nil, err
			}
			if exit {
				x.markExit(o)
			}
			out = o
		default:
			x.n++
			if x.n > kfpir.MaxExpandedTasks {
				return nil, fmt.Errorf("the plan has more than %d tasks (loops unfolded): refusing it", kfpir.MaxExpandedTasks)
			}
			pt := &PlanTask{ID: fmt.Sprintf("T%03d", x.n), Path: path, Name: t.GetTaskInfo().GetName(), Component: t.GetComponentRef().GetName(),
				Deps: dedupe(deps), Conditions: tconds, Exit: exit, Cache: t.GetCachingOptions().GetEnableCache()}
			if pt.Name == "" {
				pt.Name = k
			}
			if i := strings.LastIndex(prefix, "["); i >= 0 {
				pt.Iteration = prefix[i:]
			}
			if e := x.ir.Executors[comp.GetExecutorLabel()]; e != nil {
				if e.Container != nil {
					pt.Image = e.Container.Image
					r := e.Container.Resources
					pt.CPU = firstQuantity(r.CPURequest, r.CPULimit)
					pt.MemoryB = firstQuantity(r.MemoryRequest, r.MemoryLimit)
					if n, err := strconv.Atoi(r.AcceleratorCount); err == nil {
						pt.GPUs = n
						pt.GPUType = r.AcceleratorType
					}
					if py, _ := pyfunc.Parse(e.Container.Command, e.Container.Args); py != nil {
						pt.Python = &PlanPython{Packages: py.Packages(), Indexes: py.Indexes()}
					}
				} else if e.Importer != nil {
					pt.Importer = true
				}
			}
			x.plan.Tasks = append(x.plan.Tasks, pt)
			x.plan.byID[pt.ID] = pt
			out = []string{pt.ID}
		}
		sinks[k] = out
	}
	var result []string
	for _, k := range order {
		if !dependedOn[k] {
			result = append(result, sinks[k]...)
		}
	}
	if len(result) == 0 {
		result = in
	}
	return result, nil
}

func (x *expander) markExit(ids []string) {
	for _, id := range ids {
		x.plan.byID[id].Exit = true
	}
}

func (x *expander) markUnexpanded(prefix string) {
	for _, t := range x.plan.Tasks {
		if strings.HasPrefix(t.Path, prefix) {
			t.Unexpanded = true
		}
	}
}

func firstQuantity(vals ...string) float64 {
	for _, v := range vals {
		if q, err := kfpir.ParseQuantity(v); err == nil && q > 0 {
			return q
		}
	}
	return 0
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// knownInputs returns the parameter values of a DAG task's inputs that are
// known before the run (constants and known parent inputs).
func knownInputs(t *pb.PipelineTaskSpec, known map[string]any) map[string]any {
	out := map[string]any{}
	for name, in := range t.GetInputs().GetParameters() {
		var v any
		var ok bool
		switch {
		case in.GetComponentInputParameter() != "":
			v, ok = known[in.GetComponentInputParameter()]
		case in.GetRuntimeValue().GetConstant() != nil:
			v, ok = in.GetRuntimeValue().GetConstant().AsInterface(), true
		}
		if ok && in.GetParameterExpressionSelector() != "" {
			sel, err := kfpir.EvalSelector(in.GetParameterExpressionSelector(), v)
			v, ok = sel, err == nil
		}
		if ok {
			out[name] = v
		}
	}
	return out
}

func loopItems(t *pb.PipelineTaskSpec, known map[string]any) ([]any, bool) {
	it := t.GetParameterIterator()
	if it == nil {
		return nil, false
	}
	var v any
	if raw := it.GetItems().GetRaw(); raw != "" {
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return nil, false
		}
	} else {
		var ok bool
		v, ok = known[it.GetItems().GetInputParameter()]
		if !ok {
			return nil, false
		}
	}
	if s, ok := v.(string); ok {
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, false
		}
	}
	l, ok := v.([]any)
	return l, ok
}

// topoOrder orders the tasks of a DAG so that dependencies come first (ties
// by name, so plans are deterministic).
func topoOrder(tasks map[string]*pb.PipelineTaskSpec) ([]string, error) {
	for _, k := range slices.Sorted(maps.Keys(tasks)) {
		for _, d := range kfpir.IRDependencies(tasks[k]) {
			if tasks[d] == nil {
				return nil, fmt.Errorf("task %s depends on unknown task %s", k, d)
			}
		}
	}
	return kfpir.TaskGraph(tasks).TopoOrder()
}

// stage assigns each task its stage (longest dependency chain before it),
// the [P] marks, totals and the critical path.
func (pl *Plan) stage() {
	// Tasks are appended in a topological order, so one pass suffices.
	longest := map[string]int{}
	prev := map[string]string{}
	for _, t := range pl.Tasks {
		s := 0
		for _, d := range t.Deps {
			if pl.byID[d].Stage+1 > s {
				s = pl.byID[d].Stage + 1
			}
			if longest[d]+1 > longest[t.ID] {
				longest[t.ID] = longest[d] + 1
				prev[t.ID] = d
			}
		}
		t.Stage = s
		for len(pl.Stages) <= s {
			pl.Stages = append(pl.Stages, nil)
		}
		pl.Stages[s] = append(pl.Stages[s], t.ID)
	}
	for _, st := range pl.Stages {
		var cpu, mem float64
		gpus := 0
		for _, id := range st {
			t := pl.byID[id]
			t.Parallel = len(st) > 1
			cpu += t.CPU
			mem += t.MemoryB
			gpus += t.GPUs
			pl.Totals.CPU += t.CPU
			pl.Totals.MemoryB += t.MemoryB
			pl.Totals.GPUs += t.GPUs
		}
		pl.Totals.PeakCPU = max(pl.Totals.PeakCPU, cpu)
		pl.Totals.PeakMemory = max(pl.Totals.PeakMemory, mem)
		pl.Totals.PeakGPUs = max(pl.Totals.PeakGPUs, gpus)
	}
	pl.Totals.Tasks = len(pl.Tasks)
	end := ""
	for _, t := range pl.Tasks {
		if end == "" || longest[t.ID] > longest[end] {
			end = t.ID
		}
	}
	for id := end; id != ""; id = prev[id] {
		pl.CriticalPath = append([]string{id}, pl.CriticalPath...)
	}
}

// Task returns a task of the plan by id.
func (pl *Plan) Task(id string) *PlanTask { return pl.byID[id] }

func (t *PlanTask) resources() string {
	var parts []string
	if t.CPU > 0 {
		parts = append(parts, "cpu="+strconv.FormatFloat(t.CPU, 'f', -1, 64))
	}
	if t.MemoryB > 0 {
		parts = append(parts, "mem="+kfpir.FormatBytes(t.MemoryB))
	}
	if t.GPUs > 0 {
		g := "gpu=" + strconv.Itoa(t.GPUs)
		if t.GPUType != "" && t.GPUType != "nvidia.com/gpu" {
			g += "(" + t.GPUType + ")"
		}
		parts = append(parts, g)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// WriteText prints the plan for people.
func (pl *Plan) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "Pipeline %s: %d tasks in %d stages\n", pl.Pipeline, len(pl.Tasks), len(pl.Stages))
	if len(pl.Parameters) > 0 {
		var ps []string
		for _, k := range slices.Sorted(maps.Keys(pl.Parameters)) {
			b, _ := json.Marshal(pl.Parameters[k])
			ps = append(ps, k+"="+string(b))
		}
		fmt.Fprintf(w, "Parameters: %s\n", strings.Join(ps, " "))
	}
	width := 4
	for _, t := range pl.Tasks {
		width = max(width, len(t.Name+t.Iteration))
	}
	cw := 9
	for _, t := range pl.Tasks {
		cw = max(cw, len(t.Component))
	}
	for i, st := range pl.Stages {
		fmt.Fprintf(w, "\nStage %d\n", i+1)
		for _, id := range st {
			t := pl.byID[id]
			mark := "   "
			if t.Parallel {
				mark = "[P]"
			}
			name := t.Name + t.Iteration
			fmt.Fprintf(w, "  %s %s %-*s  %-*s  %s", t.ID, mark, width, name, cw, t.Component, t.resources())
			var notes []string
			if t.Importer {
				notes = append(notes, "importer")
			}
			if t.Exit {
				notes = append(notes, "exit handler: runs whatever the outcome")
			}
			for _, c := range t.Conditions {
				notes = append(notes, "if "+c)
			}
			if t.Unexpanded {
				notes = append(notes, "loop items known only at run time")
			}
			if p := t.Python; p != nil {
				n := "python: " + pyfunc.Display(p.Packages)
				switch p.Prepared {
				case "yes":
					n += "; installed in " + p.Ref
				case "no":
					n += "; not installed yet (mlpipe build installs it in " + p.Ref + ")"
				}
				notes = append(notes, n)
			}
			if len(notes) > 0 {
				fmt.Fprintf(w, "  (%s)", strings.Join(notes, "; "))
			}
			fmt.Fprintln(w)
		}
	}
	tt := pl.Totals
	fmt.Fprintf(w, "\nTotals: %d tasks; cpu %s (peak %s per stage), memory %s (peak %s), gpus %d (peak %d)\n",
		tt.Tasks, fmtNum(tt.CPU), fmtNum(tt.PeakCPU), kfpir.FormatBytes(tt.MemoryB), kfpir.FormatBytes(tt.PeakMemory), tt.GPUs, tt.PeakGPUs)
	var names []string
	for _, id := range pl.CriticalPath {
		t := pl.byID[id]
		names = append(names, t.Name+t.Iteration)
	}
	fmt.Fprintf(w, "Critical path (%d tasks): %s\n", len(names), strings.Join(names, " -> "))
	for _, n := range pl.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	return nil
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// WriteJSON prints the plan as JSON.
func (pl *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(pl)
}

// WriteDot prints the plan as a Graphviz graph.
func (pl *Plan) WriteDot(w io.Writer) error {
	fmt.Fprintf(w, "digraph %q {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n", pl.Pipeline)
	crit := map[string]bool{}
	for _, id := range pl.CriticalPath {
		crit[id] = true
	}
	for _, t := range pl.Tasks {
		style := ""
		if t.Exit {
			style = ", style=dashed"
		}
		if crit[t.ID] {
			style += ", color=red"
		}
		fmt.Fprintf(w, "  %s [label=%q%s];\n", t.ID, t.Name+t.Iteration+"\n"+t.Component, style)
	}
	for _, t := range pl.Tasks {
		for _, d := range t.Deps {
			fmt.Fprintf(w, "  %s -> %s;\n", d, t.ID)
		}
	}
	fmt.Fprintln(w, "}")
	return nil
}

// WriteMermaid prints the plan as a Mermaid flowchart.
func (pl *Plan) WriteMermaid(w io.Writer) error {
	fmt.Fprintln(w, "flowchart LR")
	for _, t := range pl.Tasks {
		label := strings.ReplaceAll(t.Name+t.Iteration, "\"", "'")
		if t.Exit {
			fmt.Fprintf(w, "  %s([\"%s\"])\n", t.ID, label)
		} else {
			fmt.Fprintf(w, "  %s[\"%s\"]\n", t.ID, label)
		}
	}
	for _, t := range pl.Tasks {
		for _, d := range t.Deps {
			fmt.Fprintf(w, "  %s --> %s\n", d, t.ID)
		}
	}
	return nil
}
