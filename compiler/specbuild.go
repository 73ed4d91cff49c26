package compiler

// Helpers that build and tidy the IR's protobuf messages: input specs,
// declarations of component inputs and outputs, DAG outputs, and the
// resource fields newer than the pinned proto.

import (
	"encoding/json"
	"fmt"
	"sort"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
	"google.golang.org/protobuf/types/known/structpb"
)

func compInputParam(name string) *pb.TaskInputsSpec_InputParameterSpec {
	return &pb.TaskInputsSpec_InputParameterSpec{Kind: &pb.TaskInputsSpec_InputParameterSpec_ComponentInputParameter{ComponentInputParameter: name}}
}

func cloneParamSpec(s *pb.TaskInputsSpec_InputParameterSpec) *pb.TaskInputsSpec_InputParameterSpec {
	cp := &pb.TaskInputsSpec_InputParameterSpec{Kind: s.Kind, ParameterExpressionSelector: s.ParameterExpressionSelector}
	if ci, ok := s.Kind.(*pb.TaskInputsSpec_InputParameterSpec_ComponentInputParameter); ok {
		cp.Kind = &pb.TaskInputsSpec_InputParameterSpec_ComponentInputParameter{ComponentInputParameter: ci.ComponentInputParameter}
	}
	return cp
}

func constantParam(v any) *pb.TaskInputsSpec_InputParameterSpec {
	val, err := structpb.NewValue(kfpir.JSONCompatible(v))
	if err != nil {
		val = structpb.NewStringValue(fmt.Sprint(v))
	}
	return &pb.TaskInputsSpec_InputParameterSpec{Kind: &pb.TaskInputsSpec_InputParameterSpec_RuntimeValue{
		RuntimeValue: &pb.ValueOrRuntimeParameter{Value: &pb.ValueOrRuntimeParameter_Constant{Constant: val}}}}
}

func canonicalJSON(v any) (string, error) {
	b, err := json.Marshal(kfpir.JSONCompatible(v))
	return string(b), err
}

func ensureInputs(ts *pb.PipelineTaskSpec) {
	if ts.Inputs == nil {
		ts.Inputs = &pb.TaskInputsSpec{}
	}
	if ts.Inputs.Parameters == nil {
		ts.Inputs.Parameters = map[string]*pb.TaskInputsSpec_InputParameterSpec{}
	}
	if ts.Inputs.Artifacts == nil {
		ts.Inputs.Artifacts = map[string]*pb.TaskInputsSpec_InputArtifactSpec{}
	}
}

func pruneInputs(ts *pb.PipelineTaskSpec) {
	if ts.Inputs == nil {
		return
	}
	if len(ts.Inputs.Parameters) == 0 {
		ts.Inputs.Parameters = nil
	}
	if len(ts.Inputs.Artifacts) == 0 {
		ts.Inputs.Artifacts = nil
	}
	if ts.Inputs.Parameters == nil && ts.Inputs.Artifacts == nil {
		ts.Inputs = nil
	}
}

func addDep(ts *pb.PipelineTaskSpec, key string) {
	for _, d := range ts.DependentTasks {
		if d == key {
			return
		}
	}
	ts.DependentTasks = append(ts.DependentTasks, key)
	sort.Strings(ts.DependentTasks)
}

// sortDeps sorts dependentTasks and prunes empty input maps in a DAG and
// the groups below it.
func sortDeps(cs *pb.ComponentSpec) {
	for _, t := range cs.GetDag().GetTasks() {
		sort.Strings(t.DependentTasks)
		pruneInputs(t)
	}
}

func declareParamInput(cs *pb.ComponentSpec, key string, ty Type) {
	if cs.InputDefinitions == nil {
		cs.InputDefinitions = &pb.ComponentInputsSpec{}
	}
	if cs.InputDefinitions.Parameters == nil {
		cs.InputDefinitions.Parameters = map[string]*pb.ComponentInputsSpec_ParameterSpec{}
	}
	if _, ok := cs.InputDefinitions.Parameters[key]; ok {
		return
	}
	pt := ty.Param
	if pt == pb.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED {
		pt = pb.ParameterType_STRING
	}
	cs.InputDefinitions.Parameters[key] = &pb.ComponentInputsSpec_ParameterSpec{ParameterType: pt}
}

func declareArtifactInput(cs *pb.ComponentSpec, key string, ty Type) {
	if cs.InputDefinitions == nil {
		cs.InputDefinitions = &pb.ComponentInputsSpec{}
	}
	if cs.InputDefinitions.Artifacts == nil {
		cs.InputDefinitions.Artifacts = map[string]*pb.ComponentInputsSpec_ArtifactSpec{}
	}
	if _, ok := cs.InputDefinitions.Artifacts[key]; ok {
		return
	}
	cs.InputDefinitions.Artifacts[key] = &pb.ComponentInputsSpec_ArtifactSpec{ArtifactType: artifactSchema(ty), IsArtifactList: ty.List}
}

// addDagOutput maps DAG output key to output subKey of the subtask.
func addDagOutput(cs *pb.ComponentSpec, key, subtask, subKey string, ty Type) {
	dag := cs.GetDag()
	if dag.Outputs == nil {
		dag.Outputs = &pb.DagOutputsSpec{}
	}
	if cs.OutputDefinitions == nil {
		cs.OutputDefinitions = &pb.ComponentOutputsSpec{}
	}
	if ty.IsArtifact() {
		if dag.Outputs.Artifacts == nil {
			dag.Outputs.Artifacts = map[string]*pb.DagOutputsSpec_DagOutputArtifactSpec{}
		}
		dag.Outputs.Artifacts[key] = &pb.DagOutputsSpec_DagOutputArtifactSpec{ArtifactSelectors: []*pb.DagOutputsSpec_ArtifactSelectorSpec{{ProducerSubtask: subtask, OutputArtifactKey: subKey}}}
		if cs.OutputDefinitions.Artifacts == nil {
			cs.OutputDefinitions.Artifacts = map[string]*pb.ComponentOutputsSpec_ArtifactSpec{}
		}
		cs.OutputDefinitions.Artifacts[key] = &pb.ComponentOutputsSpec_ArtifactSpec{ArtifactType: artifactSchema(ty), IsArtifactList: ty.List}
		return
	}
	if dag.Outputs.Parameters == nil {
		dag.Outputs.Parameters = map[string]*pb.DagOutputsSpec_DagOutputParameterSpec{}
	}
	dag.Outputs.Parameters[key] = &pb.DagOutputsSpec_DagOutputParameterSpec{Kind: &pb.DagOutputsSpec_DagOutputParameterSpec_ValueFromParameter{
		ValueFromParameter: &pb.DagOutputsSpec_ParameterSelectorSpec{ProducerSubtask: subtask, OutputParameterKey: subKey}}}
	if cs.OutputDefinitions.Parameters == nil {
		cs.OutputDefinitions.Parameters = map[string]*pb.ComponentOutputsSpec_ParameterSpec{}
	}
	cs.OutputDefinitions.Parameters[key] = &pb.ComponentOutputsSpec_ParameterSpec{ParameterType: ty.Param}
}

func inputDefs(params []*Param) *pb.ComponentInputsSpec {
	if len(params) == 0 {
		return nil
	}
	defs := &pb.ComponentInputsSpec{}
	for _, p := range params {
		if p.Type.IsArtifact() {
			if defs.Artifacts == nil {
				defs.Artifacts = map[string]*pb.ComponentInputsSpec_ArtifactSpec{}
			}
			defs.Artifacts[p.Name] = &pb.ComponentInputsSpec_ArtifactSpec{ArtifactType: artifactSchema(p.Type), IsArtifactList: p.Type.List, IsOptional: p.Optional, Description: p.Description}
			continue
		}
		if defs.Parameters == nil {
			defs.Parameters = map[string]*pb.ComponentInputsSpec_ParameterSpec{}
		}
		ps := &pb.ComponentInputsSpec_ParameterSpec{ParameterType: p.Type.Param, IsOptional: p.Optional || p.HasDefault, Description: p.Description}
		if p.HasDefault && p.Default != nil {
			if v, err := structpb.NewValue(kfpir.JSONCompatible(p.Default)); err == nil {
				ps.DefaultValue = v
			}
		}
		defs.Parameters[p.Name] = ps
	}
	return defs
}

func outputDefs(params []*Param) *pb.ComponentOutputsSpec {
	if len(params) == 0 {
		return nil
	}
	defs := &pb.ComponentOutputsSpec{}
	for _, p := range params {
		if p.Type.IsArtifact() {
			if defs.Artifacts == nil {
				defs.Artifacts = map[string]*pb.ComponentOutputsSpec_ArtifactSpec{}
			}
			defs.Artifacts[p.Name] = &pb.ComponentOutputsSpec_ArtifactSpec{ArtifactType: artifactSchema(p.Type), IsArtifactList: p.Type.List, Description: p.Description}
			continue
		}
		if defs.Parameters == nil {
			defs.Parameters = map[string]*pb.ComponentOutputsSpec_ParameterSpec{}
		}
		defs.Parameters[p.Name] = &pb.ComponentOutputsSpec_ParameterSpec{ParameterType: p.Type.Param, Description: p.Description}
	}
	return defs
}

// mergeResourceExtras adds newer resource fields to executors' container
// resources in the encoded deploymentSpec.
func mergeResourceExtras(st *structpb.Struct, extras map[string]map[string]any) error {
	if len(extras) == 0 {
		return nil
	}
	m := st.AsMap()
	execs, _ := m["executors"].(map[string]any)
	for label, extra := range extras {
		e, _ := execs[label].(map[string]any)
		ct, _ := e["container"].(map[string]any)
		if ct == nil {
			continue
		}
		res, _ := ct["resources"].(map[string]any)
		if res == nil {
			res = map[string]any{}
			ct["resources"] = res
		}
		for k, v := range extra {
			if sub, ok := v.(map[string]any); ok {
				cur, _ := res[k].(map[string]any)
				if cur == nil {
					cur = map[string]any{}
				}
				for kk, vv := range sub {
					cur[kk] = vv
				}
				res[k] = cur
				continue
			}
			res[k] = v
		}
	}
	ns, err := structpb.NewStruct(m)
	if err != nil {
		return err
	}
	st.Fields = ns.Fields
	return nil
}
