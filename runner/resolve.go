package runner

import (
	"encoding/json"
	"fmt"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
)

// outputs are what a finished task produced.
type outputs struct {
	params    map[string]any
	artifacts map[string][]*RuntimeArtifact
}

func newOutputs() *outputs {
	return &outputs{params: map[string]any{}, artifacts: map[string][]*RuntimeArtifact{}}
}

// taskResult is a finished task of a DAG.
type taskResult struct {
	key     string
	state   State
	out     *outputs
	message string
	// tainted marks the benchmark target and what contains it.
	tainted bool
}

// resolvedInputs are a task's inputs after §4.2.
type resolvedInputs struct {
	params    map[string]any
	artifacts map[string][]*RuntimeArtifact
	// present is what was supplied before component defaults (IfPresent).
	present map[string]bool
	// platform holds the values of the parameters that name the task's
	// secrets, config maps and PVCs (platformRefs), by platform.RefKey.
	platform map[string]string
}

// resolveInputs resolves the inputs of task t of DAG d from the DAG's own
// inputs and the results of its finished siblings (docs/kfp-semantics.md §4.2).
func (d *dagRun) resolveInputs(t *pb.PipelineTaskSpec, callee *pb.ComponentSpec, results map[string]*taskResult) (*resolvedInputs, error) {
	in := &resolvedInputs{params: map[string]any{}, artifacts: map[string][]*RuntimeArtifact{}, present: map[string]bool{}}
	decl := callee.GetInputDefinitions()
	for name, spec := range t.GetInputs().GetParameters() {
		var v any
		var ok bool
		switch k := spec.Kind.(type) {
		case *pb.TaskInputsSpec_InputParameterSpec_ComponentInputParameter:
			v, ok = d.params[k.ComponentInputParameter]
			if ok && v == nil {
				ok = false
			}
		case *pb.TaskInputsSpec_InputParameterSpec_TaskOutputParameter:
			res := results[k.TaskOutputParameter.GetProducerTask()]
			if res != nil && res.out != nil {
				v, ok = res.out.params[k.TaskOutputParameter.GetOutputParameterKey()]
			}
			if !ok && res != nil && res.state.OK() {
				// A DAG output whose producer was skipped: absent.
				ok = false
			}
		case *pb.TaskInputsSpec_InputParameterSpec_RuntimeValue:
			c := k.RuntimeValue.GetConstant()
			if c == nil {
				return nil, fmt.Errorf("input %s: only runtimeValue.constant is supported", name)
			}
			v, ok = c.AsInterface(), true
			if s, isStr := v.(string); isStr {
				v = d.r.substituteJobPlaceholders(s, d, t)
			}
		case *pb.TaskInputsSpec_InputParameterSpec_TaskFinalStatus_:
			p := k.TaskFinalStatus.GetProducerTask()
			v, ok = d.finalStatus(p, results[p]), true
		default:
			return nil, fmt.Errorf("input %s has no value", name)
		}
		if ok && spec.GetParameterExpressionSelector() != "" {
			sel, err := kfpir.EvalSelector(spec.GetParameterExpressionSelector(), v)
			if err != nil {
				return nil, fmt.Errorf("input %s: %w", name, err)
			}
			v = sel
		}
		if !ok {
			ps := decl.GetParameters()[name]
			if ps == nil || ps.GetIsOptional() || ps.GetDefaultValue() != nil {
				continue // omitted: the default (if any) applies later
			}
			return nil, fmt.Errorf("input %s has no value (its producer did not run or did not produce it)", name)
		}
		if ps := decl.GetParameters()[name]; ps != nil {
			cv, err := coerceParam(ps.GetParameterType(), v)
			if err != nil {
				return nil, fmt.Errorf("input %s: %w", name, err)
			}
			v = cv
		}
		in.params[name] = v
		in.present[name] = true
	}
	for name, spec := range t.GetInputs().GetArtifacts() {
		var arts []*RuntimeArtifact
		switch k := spec.Kind.(type) {
		case *pb.TaskInputsSpec_InputArtifactSpec_ComponentInputArtifact:
			arts = d.artifacts[k.ComponentInputArtifact]
		case *pb.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifact:
			if res := results[k.TaskOutputArtifact.GetProducerTask()]; res != nil && res.out != nil {
				arts = res.out.artifacts[k.TaskOutputArtifact.GetOutputArtifactKey()]
			}
		}
		if len(arts) == 0 {
			as := decl.GetArtifacts()[name]
			if as == nil || as.GetIsOptional() || as.GetIsArtifactList() {
				if as != nil && as.GetIsArtifactList() {
					in.artifacts[name] = nil
				}
				continue
			}
			return nil, fmt.Errorf("input artifact %s has no value (its producer did not run or did not produce it)", name)
		}
		in.artifacts[name] = arts
		in.present[name] = true
	}
	return in, nil
}

// coerceParam checks a value against a declared parameter type, converting
// non-strings for STRING inputs as the backend does (§4.2 step 4).
func coerceParam(t pb.ParameterType_ParameterTypeEnum, v any) (any, error) {
	switch t {
	case pb.ParameterType_STRING:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return FormatValue(v), nil
	case pb.ParameterType_NUMBER_INTEGER, pb.ParameterType_NUMBER_DOUBLE:
		if s, ok := v.(string); ok {
			// Values that arrive as text (loop items, files) are parsed.
			var f float64
			if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &f); err == nil {
				v = f
			}
		}
	case pb.ParameterType_BOOLEAN:
		if s, ok := v.(string); ok {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true":
				v = true
			case "false":
				v = false
			}
		}
	case pb.ParameterType_LIST, pb.ParameterType_STRUCT:
		if s, ok := v.(string); ok {
			var parsed any
			if err := json.Unmarshal([]byte(s), &parsed); err == nil {
				v = parsed
			}
		}
	case pb.ParameterType_TASK_FINAL_STATUS:
		if _, ok := v.(map[string]any); ok {
			return v, nil
		}
	}
	out, err := kfpir.CheckValue(t, v)
	if err != nil {
		return nil, err
	}
	if t == pb.ParameterType_NUMBER_INTEGER {
		// JSON numbers everywhere else are float64; keep that form.
		if i, ok := out.(int64); ok {
			return float64(i), nil
		}
	}
	return out, nil
}

// finalStatus is the PipelineTaskFinalStatus of a finished task (§4.6),
// with the backend's MLMD state names.
func (d *dagRun) finalStatus(producer string, res *taskResult) map[string]any {
	state := "FAILED"
	msg := ""
	if res != nil {
		switch res.state {
		case Succeeded:
			state = "COMPLETE"
		case Cached:
			state = "CACHED"
		case Canceled:
			state = "CANCELED"
		case Skipped:
			state = "COMPLETE"
		}
		msg = res.message
	}
	errObj := map[string]any{}
	if state == "FAILED" || state == "CANCELED" {
		errObj["code"] = float64(1)
		if msg == "" {
			msg = "task " + producer + " " + strings.ToLower(state)
		}
		errObj["message"] = msg
	}
	return map[string]any{
		"state":                   state,
		"pipelineJobResourceName": d.r.runID,
		"pipelineTaskName":        producer,
		"error":                   errObj,
	}
}

// withDefaults returns the parameters of a component invocation with the
// component's defaults added for inputs that are absent (§3.2).
func withDefaults(callee *pb.ComponentSpec, params map[string]any) map[string]any {
	out := make(map[string]any, len(params))
	for k, v := range params {
		out[k] = v
	}
	for name, ps := range callee.GetInputDefinitions().GetParameters() {
		if _, ok := out[name]; ok {
			continue
		}
		if ps.GetDefaultValue() != nil {
			out[name] = ps.GetDefaultValue().AsInterface()
		}
	}
	return out
}

// checkLiterals enforces inputDefinitions literals (newer IR).
func (r *run) checkLiterals(compName string, params map[string]any) error {
	for name, v := range params {
		lits := r.ir.Literals[compName+"/"+name]
		if len(lits) == 0 {
			continue
		}
		ok := false
		for _, l := range lits {
			if FormatValue(l) == FormatValue(v) {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("input %s: %v is not one of the allowed values %v", name, v, lits)
		}
	}
	return nil
}
