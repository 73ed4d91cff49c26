package runner

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/mlpipe/mlpipe/kfpir"
)

// Every task of the IR that belongs to a run is recorded, also those that
// never run: a task inside a condition that was false, a sub-DAG that was
// skipped, a loop over no items, iterations never started because the run
// failed fast or was cancelled. They are recorded by their own paths, with
// the reason (docs/kfp-semantics.md §4.13).

// recordSimple records a task that finished without running (skipped,
// cancelled, failed before start) and, for a DAG, every task inside it.
func (r *run) recordSimple(path string, t *pb.PipelineTaskSpec, state State, msg string) {
	callee := r.ir.Component(t.GetComponentRef().GetName())
	r.saveNotRun(path, t, callee, state, msg)
	if callee.GetDag() != nil {
		r.recordNotRun(path, callee, state, msg)
	}
}

// recordNotRun records every task of body, the DAG of the group at path,
// as not run (state Skipped or Canceled) for the reason why, recursively.
func (r *run) recordNotRun(group string, body *pb.ComponentSpec, state State, why string) {
	if state != Canceled {
		state = Skipped
	}
	budget := kfpir.MaxExpandedTasks
	r.recordNotRunIn(group, body, state, "in "+path.Base(group)+": "+why, 0, &budget)
}

func (r *run) recordNotRunIn(path string, body *pb.ComponentSpec, state State, why string, depth int, budget *int) {
	if depth >= kfpir.MaxNesting {
		return // a component that contains itself: validation refuses it
	}
	tasks := body.GetDag().GetTasks()
	for _, key := range slices.Sorted(maps.Keys(tasks)) {
		if *budget <= 0 {
			return
		}
		*budget--
		t := tasks[key]
		sub := path + "/" + key
		callee := r.ir.Component(t.GetComponentRef().GetName())
		r.saveNotRun(sub, t, callee, state, why)
		if callee.GetDag() != nil {
			r.recordNotRunIn(sub, callee, state, why, depth+1, budget)
		}
	}
}

// saveNotRun records one task that ended without running and tells the
// caller's event stream.
func (r *run) saveNotRun(path string, t *pb.PipelineTaskSpec, callee *pb.ComponentSpec, state State, why string) {
	kind := "container"
	if callee.GetDag() != nil {
		kind = "dag"
	}
	rec := &TaskRecord{RunID: r.runID, Path: path, Name: DisplayName(path), Component: t.GetComponentRef().GetName(), Kind: kind,
		State: state, StartedAt: time.Now(), Error: why}
	rec.FinishedAt = rec.StartedAt
	r.saveTask(rec)
	e := Event{Task: rec.Name, Path: path, State: state, Message: why}
	if kind == "dag" {
		e.Kind = "dag"
	}
	r.emit(e)
}

// paramRef is how a trigger condition reads a task input.
var paramRef = regexp.MustCompile(`inputs\.parameter_values\[\s*(?:'([^']*)'|"([^"]*)")\s*\]`)

// describeCondition rewrites a condition for people: every input it reads
// becomes the name the pipeline author wrote, with the value it had, e.g.
// inputs.parameter_values['pipelinechannel--evaluate-best_accuracy'] >= ...
// becomes "evaluate.best_accuracy (0.72) >= threshold (0.8)".
func describeCondition(cond string, t *pb.PipelineTaskSpec, params map[string]any) string {
	return paramRef.ReplaceAllStringFunc(cond, func(m string) string {
		sub := paramRef.FindStringSubmatch(m)
		key := sub[1] + sub[2]
		name := readableInput(t, key)
		v, ok := params[key]
		if !ok {
			return name + " (unset)"
		}
		s := FormatValue(v)
		if len(s) > 60 {
			s = s[:57] + "..."
		}
		return name + " (" + s + ")"
	})
}

// readableInput names a task input by where it comes from: producer.output
// for a task's output, the enclosing input's name (without the SDK's
// pipelinechannel-- prefix) for a component input.
func readableInput(t *pb.PipelineTaskSpec, key string) string {
	spec := t.GetInputs().GetParameters()[key]
	if p := spec.GetTaskOutputParameter(); p != nil {
		return p.GetProducerTask() + "." + p.GetOutputParameterKey()
	}
	if c := spec.GetComponentInputParameter(); c != "" {
		key = c
	}
	return strings.TrimPrefix(key, "pipelinechannel--")
}

// conditionFalse is the reason recorded for a task whose condition is false.
func conditionFalse(cond string, t *pb.PipelineTaskSpec, params map[string]any) string {
	return fmt.Sprintf("condition %s is false", describeCondition(cond, t, params))
}
