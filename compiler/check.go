package compiler

import (
	"slices"
	"sort"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/internal/graph"
	"github.com/mlpipe/mlpipe/kfpir"
)

// checkPipeline validates the meaning of a parsed pipeline: names,
// references, types, required inputs, loops, conditions and cycles.
func checkPipeline(d *diag.List, p *Pipeline) {
	all := append(append([]*Task(nil), p.Tasks...), p.Finally...)
	seen := map[string]*Task{}
	sanitized := map[string]*Task{}
	for _, t := range all {
		if prev, ok := seen[t.Name]; ok {
			d.At(t.Pos, "duplicate task name %q (first at line %d)", t.Name, prev.Pos.Line)
			continue
		}
		seen[t.Name] = t
		s := SanitizeName(t.Name)
		if prev, ok := sanitized[s]; ok {
			d.At(t.Pos, "task names %q and %q are the same once sanitized to %q", prev.Name, t.Name, s)
		}
		sanitized[s] = t
	}
	for _, t := range all {
		checkTask(d, p, t)
	}
	for _, o := range p.Outputs {
		pt := p.task(o.Ref.Name)
		switch {
		case pt == nil:
			d.At(o.Pos, "output %q: unknown task %q", o.Name, o.Ref.Name)
		case pt.Component != nil && pt.Component.Output(o.Ref.Output) == nil:
			d.At(o.Pos, "output %q: task %q has no output %q%s", o.Name, o.Ref.Name, o.Ref.Output, outputsHint(pt.Component))
		}
	}
	checkCycles(d, p.Tasks)
	checkCycles(d, p.Finally)
}

func outputsHint(c *Component) string {
	var names []string
	for _, o := range c.Outputs {
		names = append(names, o.Name)
	}
	if len(names) == 0 {
		return " (it has no outputs)"
	}
	return " (outputs: " + strings.Join(names, ", ") + ")"
}

func inputsHint(c *Component) string {
	var names []string
	for _, o := range c.Inputs {
		names = append(names, o.Name)
	}
	if len(names) == 0 {
		return " (it has no inputs)"
	}
	return " (inputs: " + strings.Join(names, ", ") + ")"
}

// refType returns the type a reference has for task t, and whether it is
// known (loop items over parameters are not).
func refType(d *diag.List, p *Pipeline, t *Task, r *Ref) (Type, bool, bool) {
	switch r.Kind {
	case RefInput:
		in := p.input(r.Name)
		if in == nil {
			d.At(r.Pos, "unknown pipeline input %q in ${{ %s }}", r.Name, r.Text)
			return Type{}, false, false
		}
		return in.Type, true, true
	case RefTask:
		pt := p.task(r.Name)
		if pt == nil {
			d.At(r.Pos, "unknown task %q in ${{ %s }}", r.Name, r.Text)
			return Type{}, false, false
		}
		if pt == t {
			d.At(r.Pos, "task %q refers to its own output", t.Name)
			return Type{}, false, false
		}
		if pt.Finally && !t.Finally {
			d.At(r.Pos, "task %q cannot use the output of finally task %q", t.Name, pt.Name)
			return Type{}, false, false
		}
		if pt.Component == nil {
			return Type{}, false, false
		}
		if pt.Component.Output(r.Output) == nil {
			d.At(r.Pos, "task %q has no output %q%s", pt.Name, r.Output, outputsHint(pt.Component))
			return Type{}, false, false
		}
		ty, _ := p.outputType(r)
		return ty, true, true
	case RefItem:
		if t.ForEach == nil {
			d.At(r.Pos, "${{ %s }} is only defined in a task with for_each", r.Text)
			return Type{}, false, false
		}
		if r.Name != "" {
			return Type{}, false, true
		}
		if l, ok := t.ForEach.Literal.([]any); ok {
			if pt, ok := literalItemType(l); ok {
				return Type{Param: pt}, true, true
			}
		}
		return Type{}, false, true
	case RefStatus:
		if !t.Finally {
			d.At(r.Pos, "${{ pipeline.status }} is only defined in finally tasks")
			return Type{}, false, false
		}
		return Type{Param: pb.ParameterType_TASK_FINAL_STATUS}, true, true
	case RefJobField:
		return Type{Param: pb.ParameterType_STRING}, true, true
	}
	return Type{}, false, false
}

// literalItemType infers the parameter type of the items of a literal list.
func literalItemType(l []any) (pb.ParameterType_ParameterTypeEnum, bool) {
	var t pb.ParameterType_ParameterTypeEnum
	for i, it := range l {
		var it2 pb.ParameterType_ParameterTypeEnum
		switch it.(type) {
		case string:
			it2 = pb.ParameterType_STRING
		case int64:
			it2 = pb.ParameterType_NUMBER_INTEGER
		case float64:
			it2 = pb.ParameterType_NUMBER_DOUBLE
		case bool:
			it2 = pb.ParameterType_BOOLEAN
		case []any:
			it2 = pb.ParameterType_LIST
		case map[string]any:
			it2 = pb.ParameterType_STRUCT
		default:
			return 0, false
		}
		switch {
		case i == 0:
			t = it2
		case t == it2:
		case (t == pb.ParameterType_NUMBER_INTEGER && it2 == pb.ParameterType_NUMBER_DOUBLE) ||
			(t == pb.ParameterType_NUMBER_DOUBLE && it2 == pb.ParameterType_NUMBER_INTEGER):
			t = pb.ParameterType_NUMBER_DOUBLE
		default:
			return 0, false
		}
	}
	return t, len(l) > 0
}

func checkTask(d *diag.List, p *Pipeline, t *Task) {
	c := t.Component
	// for_each source
	if t.ForEach != nil {
		if r := t.ForEach.Ref; r != nil {
			ty, known, _ := refType(d, p, &Task{Name: t.Name, Finally: t.Finally}, r)
			if known {
				if ty.IsArtifact() && !ty.List {
					d.At(t.ForEach.Pos, "for_each over %s, which is a single artifact (%s), not a list", r.Text, ty)
				} else if !ty.IsArtifact() && ty.Param != pb.ParameterType_LIST {
					d.At(t.ForEach.Pos, "for_each over %s, which is a %s, not a List", r.Text, ty)
				}
			}
		} else if l, ok := t.ForEach.Literal.([]any); ok {
			if _, ok := literalItemType(l); !ok && len(l) > 0 {
				d.At(t.ForEach.Pos, "for_each items must all be of one type (strings, numbers, booleans, lists or mappings)")
			}
		}
	}
	if c == nil {
		return
	}
	given := map[string]bool{}
	for _, in := range t.Inputs {
		if given[in.Name] {
			d.At(in.Pos, "input %q given twice", in.Name)
			continue
		}
		given[in.Name] = true
		decl := c.Input(in.Name)
		if decl == nil {
			d.At(in.Pos, "component %s has no input %q%s", c.Name, in.Name, inputsHint(c))
			continue
		}
		checkArgument(d, p, t, in, decl)
	}
	for _, decl := range c.Inputs {
		if !given[decl.Name] && !decl.Optional && !decl.HasDefault {
			d.At(t.Pos, "task %q: missing required input %q (%s) of component %s", t.Name, decl.Name, decl.Type, c.Name)
		}
	}
	for i, a := range t.After {
		at := p.task(a)
		switch {
		case at == nil:
			d.At(t.AfterPos[i], "after: unknown task %q", a)
		case at == t:
			d.At(t.AfterPos[i], "task %q cannot run after itself", a)
		case at.Finally && !t.Finally:
			d.At(t.AfterPos[i], "task %q cannot run after finally task %q", t.Name, a)
		case !at.Finally && t.Finally:
			d.At(t.AfterPos[i], "finally task %q always runs after every task; after: %q is not needed", t.Name, a)
		}
	}
	if t.When != "" {
		checkWhenExpr(d, p, t)
	}
	if r := t.Resources.GPURef; r != nil {
		if in := p.input(r.Name); in == nil {
			d.At(r.Pos, "resources.gpu: unknown pipeline input %q", r.Name)
		} else if in.Type.Param != pb.ParameterType_NUMBER_INTEGER && in.Type.Param != pb.ParameterType_BOOLEAN {
			d.At(r.Pos, "resources.gpu: input %q is %s; it must be an Integer (a count) or a Boolean (one GPU or none)", r.Name, in.Type)
		}
	}
	if c.IsDAG() {
		// A DAG component: container settings do not apply.
		if t.Resources != (TaskResources{}) {
			d.At(t.Resources.Pos, "resources apply to container components; %s is a pipeline", c.Name)
		}
		if len(t.Env) > 0 {
			d.At(t.Pos, "env applies to container components; %s is a pipeline", c.Name)
		}
		if t.Retry != nil {
			d.At(t.Pos, "retry applies to container components; %s is a pipeline", c.Name)
		}
	}
}

func checkArgument(d *diag.List, p *Pipeline, t *Task, in *TaskInput, decl *Param) {
	v := in.Value
	switch {
	case v.Ref != nil:
		ty, known, ok := refType(d, p, t, v.Ref)
		if !ok || !known {
			if ok && decl.Type.IsArtifact() && v.Ref.Kind == RefItem && !isArtifactLoop(p, t) {
				d.At(in.Pos, "input %q is an artifact (%s) but the loop item is a parameter", in.Name, decl.Type)
			}
			return
		}
		if v.Ref.Kind == RefStatus && decl.Type.Param != pb.ParameterType_TASK_FINAL_STATUS {
			d.At(in.Pos, "input %q receives ${{ pipeline.status }}, so its type must be PipelineTaskFinalStatus, not %s", in.Name, decl.Type)
			return
		}
		checkCompatible(d, in, ty, decl.Type, v.Ref)
	case v.Template != nil:
		if decl.Type.IsArtifact() {
			d.At(in.Pos, "input %q is an artifact (%s); a string template cannot feed it", in.Name, decl.Type)
			return
		}
		for _, r := range v.Refs() {
			ty, known, ok := refType(d, p, t, r)
			if ok && known && ty.IsArtifact() {
				d.At(in.Pos, "input %q: ${{ %s }} is an artifact and cannot be used inside a string", in.Name, r.Text)
			}
			if ok && r.Kind == RefStatus {
				d.At(in.Pos, "input %q: ${{ pipeline.status }} cannot be used inside a string", in.Name)
			}
		}
		if decl.Type.Param != pb.ParameterType_STRING {
			d.At(in.Pos, "input %q is %s; a string template gives a String", in.Name, decl.Type)
		}
	default:
		if decl.Type.IsArtifact() {
			d.At(in.Pos, "input %q is an artifact (%s); it needs ${{ tasks.NAME.outputs.NAME }}, not a literal", in.Name, decl.Type)
			return
		}
		if decl.Type.Param == pb.ParameterType_TASK_FINAL_STATUS {
			d.At(in.Pos, "input %q (PipelineTaskFinalStatus) needs ${{ pipeline.status }}", in.Name)
			return
		}
		if v.Literal == nil {
			if !decl.Optional {
				d.At(in.Pos, "input %q is required; null is not a value", in.Name)
			}
			return
		}
		if _, err := kfpir.CheckValue(decl.Type.Param, v.Literal); err != nil {
			hint := ""
			if decl.Type.Param == pb.ParameterType_STRING {
				hint = " (quote it to pass a string)"
			}
			d.At(in.Pos, "input %q: %v%s", in.Name, err, hint)
		}
	}
}

func isArtifactLoop(p *Pipeline, t *Task) bool {
	if t.ForEach == nil || t.ForEach.Ref == nil || t.ForEach.Ref.Kind != RefTask {
		return false
	}
	ty, ok := p.outputType(t.ForEach.Ref)
	return ok && ty.IsArtifact()
}

func checkCompatible(d *diag.List, in *TaskInput, from, to Type, r *Ref) {
	switch {
	case from.IsArtifact() && !to.IsArtifact():
		d.At(in.Pos, "input %q is a %s parameter but ${{ %s }} is an artifact (%s)", in.Name, to, r.Text, from)
	case !from.IsArtifact() && to.IsArtifact():
		d.At(in.Pos, "input %q is an artifact (%s) but ${{ %s }} is a %s parameter", in.Name, to, r.Text, from)
	case from.IsArtifact():
		if from.List && !to.List {
			d.At(in.Pos, "input %q takes one %s but ${{ %s }} is a list (the output of a for_each task); declare the input as List[%s]", in.Name, to.Artifact, r.Text, shortArtifact(to.Artifact))
		} else if !from.List && to.List {
			d.At(in.Pos, "input %q takes a list of artifacts but ${{ %s }} is a single %s", in.Name, r.Text, from.Artifact)
		} else if !artifactCompatible(from.Artifact, to.Artifact) {
			d.At(in.Pos, "input %q takes %s but ${{ %s }} is %s", in.Name, to.Artifact, r.Text, from.Artifact)
		}
	default:
		if !paramCompatible(from.Param, to.Param) {
			extra := ""
			if from.Param == pb.ParameterType_LIST && r.Kind == RefTask {
				extra = " (the output of a for_each task is a List)"
			}
			d.At(in.Pos, "input %q is %s but ${{ %s }} is %s%s", in.Name, to, r.Text, from, extra)
		}
	}
}

func shortArtifact(s string) string {
	return strings.TrimPrefix(s, "system.")
}

func checkWhenExpr(d *diag.List, p *Pipeline, t *Task) {
	a, refs, err := parseWhen(t.When)
	if err != nil {
		d.At(t.WhenPos, "when: %v", err)
		return
	}
	var vars []celVar
	ok := true
	for _, r := range refs {
		ref := &Ref{Kind: r.Kind, Name: r.Name, Output: r.Output, Text: r.String(), Pos: t.WhenPos}
		ty, known, good := refType(d, p, t, ref)
		if !good {
			ok = false
			continue
		}
		if known && ty.IsArtifact() {
			d.At(t.WhenPos, "when: %s is an artifact; conditions can only use parameters", r)
			ok = false
			continue
		}
		vars = append(vars, celVar{ref: r, typ: ty, dyn: !known})
	}
	if !ok {
		return
	}
	if err := checkWhen(a, vars); err != nil {
		d.At(t.WhenPos, "when: %v", err)
	}
}

// dependencies returns the names of the tasks t depends on (data and after).
func dependencies(t *Task) []string {
	set := map[string]bool{}
	for _, in := range t.Inputs {
		for _, r := range in.Value.Refs() {
			if r.Kind == RefTask {
				set[r.Name] = true
			}
		}
	}
	if t.ForEach != nil {
		for _, r := range t.ForEach.Refs() {
			if r.Kind == RefTask {
				set[r.Name] = true
			}
		}
	}
	if t.When != "" {
		if _, refs, err := parseWhen(t.When); err == nil {
			for _, r := range refs {
				if r.Kind == RefTask {
					set[r.Name] = true
				}
			}
		}
	}
	for _, a := range t.After {
		set[a] = true
	}
	delete(set, t.Name)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkCycles reports dependency cycles among tasks, naming the cycle from
// the point of view of what runs first ("a -> b": b needs a).
func checkCycles(d *diag.List, tasks []*Task) {
	byName := map[string]*Task{}
	var g graph.Graph
	for _, t := range tasks {
		byName[t.Name] = t
		g.Add(t.Name, dependencies(t)...)
	}
	for _, cyc := range g.Cycles() {
		slices.Reverse(cyc)
		d.At(byName[cyc[0]].Pos, "dependency cycle: %s", strings.Join(cyc, " -> "))
	}
}

// singleExecutorTask returns the task key when an IR file is a single
// compiled component (one executor task in the root DAG fed directly from
// the root inputs), else "".
func singleExecutorTask(ir *kfpir.IR) string {
	tasks := ir.Spec.GetRoot().GetDag().GetTasks()
	if len(tasks) != 1 {
		return ""
	}
	for k, t := range tasks {
		comp := ir.Spec.GetComponents()[t.GetComponentRef().GetName()]
		if comp.GetExecutorLabel() == "" {
			return ""
		}
		for name, in := range t.GetInputs().GetParameters() {
			if in.GetComponentInputParameter() != name {
				return ""
			}
		}
		for name, in := range t.GetInputs().GetArtifacts() {
			if in.GetComponentInputArtifact() != name {
				return ""
			}
		}
		return k
	}
	return ""
}
