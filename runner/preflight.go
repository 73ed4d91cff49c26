package runner

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/platform"
)

// preflight refuses, before anything runs, a pipeline that can never run
// here: GPU tasks without GPUs, tasks larger than the machine, commands the
// process executor cannot run.
func (r *run) preflight() error {
	var problems []string
	if n := kfpir.ExpandedTasks(r.ir.Spec); n > kfpir.MaxExpandedTasks {
		return &PreflightError{Problems: []string{fmt.Sprintf("the pipeline unfolds into more than %d tasks (sub-DAGs that each call the next several times?)", kfpir.MaxExpandedTasks)}}
	}
	uses := r.componentUses()
	problems = append(problems, r.setupPlatform(uses)...)
	for _, compName := range slices.Sorted(maps.Keys(uses)) {
		comp := r.ir.Component(compName)
		e := r.ir.Executors[comp.GetExecutorLabel()]
		if e == nil || e.Container == nil {
			continue
		}
		ct := e.Container
		tasks := strings.Join(uses[compName], ", ")
		// Counts given by a placeholder are known at run time only (the
		// task then fails with the reason if no GPU can be used).
		if n, err := strconv.Atoi(strings.TrimSpace(ct.Resources.AcceleratorCount)); err == nil && n > 0 {
			req := GPURequest{Count: n, Type: ct.Resources.AcceleratorType, Task: tasks}
			switch {
			case r.opts.GPUs == nil:
				reason := r.opts.GPUUnavailable
				if reason == "" {
					reason = "no GPU allocator is configured"
				}
				problems = append(problems, fmt.Sprintf("task %s needs %d GPU(s) but no GPU can be used: %s", tasks, n, reason))
			default:
				if err := r.opts.GPUs.Check(req); err != nil {
					problems = append(problems, fmt.Sprintf("task %s: %v", tasks, err))
				}
			}
		}
		// Limits above the machine are lowered to it when the task runs;
		// requests above it can never be met.
		if q, err := kfpir.ParseQuantity(ct.Resources.CPURequest); err == nil && q > r.opts.CPUs {
			problems = append(problems, fmt.Sprintf("task %s requests %s CPUs but the budget is %s", tasks, fmtFloat(q), fmtFloat(r.opts.CPUs)))
		}
		if q, err := kfpir.ParseQuantity(ct.Resources.MemoryRequest); err == nil && int64(q) > r.opts.Memory {
			problems = append(problems, fmt.Sprintf("task %s requests %s of memory but the machine has %s", tasks, kfpir.FormatBytes(q), kfpir.FormatBytes(float64(r.opts.Memory))))
		}
		if !r.opts.Executor.Properties().RunsEntrypoint && len(ct.Command) == 0 && !platform.IsCreatePVC(ct.Image) && !platform.IsDeletePVC(ct.Image) {
			problems = append(problems, fmt.Sprintf("task %s has no command (it relies on the image's entrypoint, %s); the process executor cannot run it: use --executor docker", tasks, ct.Image))
		}
	}
	problems = append(problems, r.checkRootLoops()...)
	if len(problems) > 0 {
		return &PreflightError{Problems: problems}
	}
	return nil
}

// checkRootLoops checks the items of the root DAG's loops whose items are
// known before the run (a literal list, or a pipeline parameter): each must
// be a value of the type the loop body declares for it. A wrong item is the
// user's input (exit code 2), found before anything runs.
func (r *run) checkRootLoops() []string {
	var problems []string
	tasks := r.ir.Spec.GetRoot().GetDag().GetTasks()
	for _, key := range slices.Sorted(maps.Keys(tasks)) {
		t := tasks[key]
		it := t.GetParameterIterator()
		if it == nil {
			continue
		}
		body := r.ir.Component(t.GetComponentRef().GetName())
		itemType := body.GetInputDefinitions().GetParameters()[it.GetItemInput()].GetParameterType()
		var v any
		what := ""
		if raw := it.GetItems().GetRaw(); raw != "" {
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				problems = append(problems, fmt.Sprintf("loop %s: items %q are not JSON: %v", DisplayName(key), raw, err))
				continue
			}
			what = "the literal list"
		} else {
			in := t.GetInputs().GetParameters()[it.GetItems().GetInputParameter()]
			param := in.GetComponentInputParameter()
			if param == "" {
				continue // a task's output: known at run time
			}
			pv, ok := r.opts.Params[param]
			if !ok {
				continue
			}
			v, what = pv, "parameter "+param
		}
		if s, ok := v.(string); ok {
			if err := json.Unmarshal([]byte(s), &v); err != nil {
				problems = append(problems, fmt.Sprintf("loop %s: %s (%q) is not a JSON list", DisplayName(key), what, s))
				continue
			}
		}
		items, ok := v.([]any)
		if !ok {
			problems = append(problems, fmt.Sprintf("loop %s: %s is a %s, not a list", DisplayName(key), what, jsonKind(v)))
			continue
		}
		if itemType == pb.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED {
			continue
		}
		for i, item := range items {
			if _, err := coerceLoopItem(itemType, item); err != nil {
				problems = append(problems, fmt.Sprintf("loop %s: item %d of %s (%s) is not a %s: %v", DisplayName(key), i, what,
					FormatValue(item), kfpir.ParamTypeName(itemType), err))
				break
			}
		}
	}
	return problems
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, int64, int, json.Number:
		return "number"
	case map[string]any:
		return "mapping"
	}
	return fmt.Sprintf("%T", v)
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// componentUses maps each component to the paths of the tasks that use it
// (loops not expanded).
func (r *run) componentUses() map[string][]string {
	uses := map[string][]string{}
	var walk func(compName string, cs *pb.ComponentSpec, prefix string, depth int)
	walk = func(compName string, cs *pb.ComponentSpec, prefix string, depth int) {
		if depth > kfpir.MaxNesting {
			return
		}
		for _, k := range slices.Sorted(maps.Keys(cs.GetDag().GetTasks())) {
			t := cs.GetDag().GetTasks()[k]
			p := k
			if prefix != "" {
				p = prefix + "/" + k
			}
			ref := t.GetComponentRef().GetName()
			callee := r.ir.Component(ref)
			if callee == nil {
				continue
			}
			if callee.GetDag() != nil {
				walk(ref, callee, p+"[*]", depth+1)
				continue
			}
			uses[ref] = append(uses[ref], DisplayName(strings.ReplaceAll(p, "[*]", "")))
		}
	}
	walk("root", r.ir.Spec.GetRoot(), "", 0)
	for k := range uses {
		sort.Strings(uses[k])
	}
	return uses
}

// parentOf returns the component whose DAG holds the task at path.
func (r *run) parentOf(path string) string {
	parts := strings.Split(path, "/")
	comp := "root"
	cs := r.ir.Spec.GetRoot()
	for _, p := range parts[:len(parts)-1] {
		if i := strings.IndexByte(p, '['); i >= 0 {
			p = p[:i]
		}
		t := cs.GetDag().GetTasks()[p]
		if t == nil {
			return comp
		}
		comp = t.GetComponentRef().GetName()
		cs = r.ir.Component(comp)
	}
	return comp
}
