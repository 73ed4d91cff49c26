package compiler

import (
	"maps"
	"slices"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
)

// componentFromIR turns a loaded IR file into a component usable by a
// pipeline.yaml task: its root's inputs and outputs become the component's.
func componentFromIR(ir *kfpir.IR) *Component {
	c := &Component{Name: ir.Spec.GetPipelineInfo().GetName(), Description: ir.Spec.GetPipelineInfo().GetDescription(), IR: ir}
	spec := ir.Spec.GetRoot()
	if k := singleExecutorTask(ir); k != "" {
		spec = ir.Spec.GetComponents()[spec.GetDag().GetTasks()[k].GetComponentRef().GetName()]
	}
	c.Inputs = paramsFromDefs(spec.GetInputDefinitions().GetParameters(), spec.GetInputDefinitions().GetArtifacts())
	c.Outputs = paramsFromOutDefs(spec.GetOutputDefinitions().GetParameters(), spec.GetOutputDefinitions().GetArtifacts())
	return c
}

func paramsFromDefs(params map[string]*pb.ComponentInputsSpec_ParameterSpec, arts map[string]*pb.ComponentInputsSpec_ArtifactSpec) []*Param {
	var out []*Param
	for _, n := range slices.Sorted(maps.Keys(params)) {
		p := params[n]
		pp := &Param{Name: n, Type: Type{Param: p.GetParameterType()}, Optional: p.GetIsOptional(), Description: p.GetDescription()}
		if p.DefaultValue != nil {
			pp.Default, pp.HasDefault = p.DefaultValue.AsInterface(), true
			pp.Optional = true
		}
		out = append(out, pp)
	}
	for _, n := range slices.Sorted(maps.Keys(arts)) {
		a := arts[n]
		out = append(out, &Param{Name: n, Type: Type{Artifact: kfpir.SchemaTitle(a.GetArtifactType()), SchemaVersion: a.GetArtifactType().GetSchemaVersion(), List: a.GetIsArtifactList()}, Optional: a.GetIsOptional(), Description: a.GetDescription()})
	}
	return out
}

func paramsFromOutDefs(params map[string]*pb.ComponentOutputsSpec_ParameterSpec, arts map[string]*pb.ComponentOutputsSpec_ArtifactSpec) []*Param {
	var out []*Param
	for _, n := range slices.Sorted(maps.Keys(params)) {
		out = append(out, &Param{Name: n, Type: Type{Param: params[n].GetParameterType()}, Description: params[n].GetDescription()})
	}
	for _, n := range slices.Sorted(maps.Keys(arts)) {
		a := arts[n]
		out = append(out, &Param{Name: n, Type: Type{Artifact: kfpir.SchemaTitle(a.GetArtifactType()), SchemaVersion: a.GetArtifactType().GetSchemaVersion(), List: a.GetIsArtifactList()}, Description: a.GetDescription()})
	}
	return out
}
