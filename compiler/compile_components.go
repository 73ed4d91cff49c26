package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// reserve returns name, or name-2, name-3... the first not yet in use.
func (c *compiler) reserve(name string) string {
	if !c.used[name] {
		c.used[name] = true
		return name
	}
	for i := 2; ; i++ {
		n := fmt.Sprintf("%s-%d", name, i)
		if !c.used[n] {
			c.used[n] = true
			return n
		}
	}
}

// taskComponent registers the component a task uses and returns its name.
// Container components are de-duplicated: tasks that use the same
// component with the same settings share one component and executor.
func (c *compiler) taskComponent(t *Task) (string, error) {
	comp := t.Component
	// Tasks that use a component with the same settings share it; this
	// cheap key avoids re-encoding the component for each of them.
	fast := fmt.Sprintf("%p|%+v|%q", comp, t.Resources, t.Env)
	if !comp.IsDAG() {
		if name, ok := c.fastDedup[fast]; ok {
			return name, nil
		}
		defer func() {
			if name := c.lastComp; name != "" {
				c.fastDedup[fast] = name
			}
		}()
	}
	c.lastComp = ""
	switch {
	case comp.Pipeline != nil:
		dag, err := c.compileDAG(comp.Pipeline)
		if err != nil {
			return "", err
		}
		name := c.reserve("comp-" + SanitizeName(comp.Pipeline.Name))
		c.spec.Components[name] = dag
		return name, nil
	case comp.IR != nil && comp.IsDAG():
		return c.importIRPipeline(comp.IR)
	}
	var cs *pb.ComponentSpec
	var exec *pb.PipelineDeploymentConfig_PipelineContainerSpec
	var importer *pb.PipelineDeploymentConfig_ImporterSpec
	base := SanitizeName(comp.Name)
	if comp.IR != nil {
		key := singleExecutorTask(comp.IR)
		inner := comp.IR.Spec.GetComponents()[comp.IR.Spec.GetRoot().GetDag().GetTasks()[key].GetComponentRef().GetName()]
		cs = proto.Clone(inner).(*pb.ComponentSpec)
		e := comp.IR.Executors[inner.GetExecutorLabel()]
		if e == nil {
			return "", fmt.Errorf("component %s: executor %q is missing", comp.File, inner.GetExecutorLabel())
		}
		if e.Importer != nil {
			importer = importerSpec(e.Importer)
		} else {
			exec = containerSpec(e.Container)
		}
		if base == "" {
			base = strings.TrimPrefix(inner.GetExecutorLabel(), "exec-")
		}
	} else {
		cs = &pb.ComponentSpec{InputDefinitions: inputDefs(comp.Inputs), OutputDefinitions: outputDefs(comp.Outputs)}
		ci := comp.Container
		exec = &pb.PipelineDeploymentConfig_PipelineContainerSpec{Image: ci.Image, Command: ci.Command, Args: ci.Args}
		for _, e := range ci.Env {
			exec.Env = append(exec.Env, &pb.PipelineDeploymentConfig_PipelineContainerSpec_EnvVar{Name: e.Name, Value: e.Value})
		}
	}
	if base == "" {
		base = SanitizeName(t.Name)
	}
	if exec != nil {
		applyTaskSettings(exec, t)
	}
	var extra map[string]any
	if ref := t.Resources.GPURef; ref != nil && exec != nil {
		// A count known only at run time: the string fields newer KFP
		// versions read (docs/kfp-semantics.md §6.2); the old numeric ones cannot
		// hold a placeholder.
		typ := t.Resources.GPUType
		if typ == "" {
			typ = "nvidia.com/gpu"
		}
		extra = map[string]any{"accelerator": map[string]any{
			"resourceCount": fmt.Sprintf("{{$.inputs.parameters['pipelinechannel--%s']}}", ref.Name),
			"resourceType":  typ,
		}}
	}
	es := &pb.PipelineDeploymentConfig_ExecutorSpec{}
	if importer != nil {
		es.Spec = &pb.PipelineDeploymentConfig_ExecutorSpec_Importer{Importer: importer}
	} else {
		es.Spec = &pb.PipelineDeploymentConfig_ExecutorSpec_Container{Container: exec}
	}
	// De-duplicate by content.
	cs.Implementation = nil
	key, err := contentKey(cs, es)
	if extra != nil {
		key += fmt.Sprint(extra)
	}
	if err != nil {
		return "", err
	}
	if name, ok := c.dedup[key]; ok {
		c.lastComp = name
		return name, nil
	}
	name := c.reserve("comp-" + base)
	label := "exec-" + strings.TrimPrefix(name, "comp-")
	cs.Implementation = &pb.ComponentSpec_ExecutorLabel{ExecutorLabel: label}
	c.spec.Components[name] = cs
	c.executors[label] = es
	if extra != nil {
		c.resourceExtras[label] = extra
	}
	c.dedup[key] = name
	c.lastComp = name
	return name, nil
}

func contentKey(msgs ...proto.Message) (string, error) {
	h := sha256.New()
	for _, m := range msgs {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// applyTaskSettings puts a task's resources and env on its container.
func applyTaskSettings(exec *pb.PipelineDeploymentConfig_PipelineContainerSpec, t *Task) {
	for _, e := range t.Env {
		replaced := false
		for _, ev := range exec.Env {
			if ev.Name == e.Name {
				ev.Value, replaced = e.Value, true
			}
		}
		if !replaced {
			exec.Env = append(exec.Env, &pb.PipelineDeploymentConfig_PipelineContainerSpec_EnvVar{Name: e.Name, Value: e.Value})
		}
	}
	r := t.Resources
	if r.CPU == "" && r.Memory == "" && r.GPU == 0 && r.GPURef == nil {
		return
	}
	if exec.Resources == nil {
		exec.Resources = &pb.PipelineDeploymentConfig_PipelineContainerSpec_ResourceSpec{}
	}
	if r.CPU != "" {
		if q, err := kfpir.ParseQuantity(r.CPU); err == nil {
			exec.Resources.CpuLimit, exec.Resources.CpuRequest = q, q
		}
	}
	if r.Memory != "" {
		if q, err := kfpir.ParseQuantity(r.Memory); err == nil {
			gb := q / 1e9
			exec.Resources.MemoryLimit, exec.Resources.MemoryRequest = gb, gb
		}
	}
	if r.GPU > 0 {
		typ := r.GPUType
		if typ == "" {
			typ = "nvidia.com/gpu"
		}
		exec.Resources.Accelerator = &pb.PipelineDeploymentConfig_PipelineContainerSpec_ResourceSpec_AcceleratorConfig{Type: typ, Count: int64(r.GPU)}
	}
}

func retryPolicy(r *Retry) *pb.PipelineTaskSpec_RetryPolicy {
	maxB := r.MaxBackoff
	if maxB == 0 {
		maxB = time.Hour
	}
	return &pb.PipelineTaskSpec_RetryPolicy{
		MaxRetryCount:      int32(r.Max),
		BackoffDuration:    durationpb.New(r.Backoff),
		BackoffFactor:      r.Factor,
		BackoffMaxDuration: durationpb.New(maxB),
	}
}

// containerSpec converts a decoded container back to the (old) proto, with
// resources as the numeric fields every backend honours.
func containerSpec(ct *kfpir.Container) *pb.PipelineDeploymentConfig_PipelineContainerSpec {
	out := &pb.PipelineDeploymentConfig_PipelineContainerSpec{Image: ct.Image, Command: ct.Command, Args: ct.Args}
	for _, e := range ct.Env {
		out.Env = append(out.Env, &pb.PipelineDeploymentConfig_PipelineContainerSpec_EnvVar{Name: e.Name, Value: e.Value})
	}
	r := ct.Resources
	rs := &pb.PipelineDeploymentConfig_PipelineContainerSpec_ResourceSpec{}
	set := false
	if q, err := kfpir.ParseQuantity(r.CPULimit); err == nil {
		rs.CpuLimit, set = q, true
	}
	if q, err := kfpir.ParseQuantity(r.CPURequest); err == nil {
		rs.CpuRequest, set = q, true
	}
	if q, err := kfpir.ParseQuantity(r.MemoryLimit); err == nil {
		rs.MemoryLimit, set = q/1e9, true
	}
	if q, err := kfpir.ParseQuantity(r.MemoryRequest); err == nil {
		rs.MemoryRequest, set = q/1e9, true
	}
	if n, err := strconv.ParseInt(r.AcceleratorCount, 10, 64); err == nil && n > 0 {
		rs.Accelerator = &pb.PipelineDeploymentConfig_PipelineContainerSpec_ResourceSpec_AcceleratorConfig{Type: r.AcceleratorType, Count: n}
		set = true
	}
	if set {
		out.Resources = rs
	}
	return out
}

func importerSpec(im *kfpir.Importer) *pb.PipelineDeploymentConfig_ImporterSpec {
	out := &pb.PipelineDeploymentConfig_ImporterSpec{
		ArtifactUri: &pb.ValueOrRuntimeParameter{},
		TypeSchema:  artifactSchema(Type{Artifact: im.TypeSchema, SchemaVersion: im.SchemaVersion}),
		Reimport:    im.Reimport,
	}
	if im.URIParameter != "" {
		out.ArtifactUri.Value = &pb.ValueOrRuntimeParameter_RuntimeParameter{RuntimeParameter: im.URIParameter}
	} else {
		out.ArtifactUri.Value = &pb.ValueOrRuntimeParameter_Constant{Constant: structpb.NewStringValue(im.URIConstant)}
	}
	if im.Metadata != nil {
		if st, err := structpb.NewStruct(kfpir.JSONCompatible(im.Metadata).(map[string]any)); err == nil {
			out.Metadata = st
		}
	}
	return out
}

// importIRPipeline copies a whole SDK-compiled pipeline in as a DAG
// component, renaming its components and executors so they cannot clash.
func (c *compiler) importIRPipeline(ir *kfpir.IR) (string, error) {
	rename := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(ir.Spec.GetComponents())) {
		rename[name] = c.reserve(name)
	}
	labels := map[string]string{}
	for _, label := range slices.Sorted(maps.Keys(ir.Executors)) {
		labels[label] = c.reserve(label)
	}
	fix := func(cs *pb.ComponentSpec) *pb.ComponentSpec {
		cp := proto.Clone(cs).(*pb.ComponentSpec)
		if l := cp.GetExecutorLabel(); l != "" {
			cp.Implementation = &pb.ComponentSpec_ExecutorLabel{ExecutorLabel: labels[l]}
		}
		for _, t := range cp.GetDag().GetTasks() {
			if t.ComponentRef != nil {
				t.ComponentRef.Name = rename[t.ComponentRef.Name]
			}
		}
		return cp
	}
	for name, cs := range ir.Spec.GetComponents() {
		c.spec.Components[rename[name]] = fix(cs)
	}
	for label, e := range ir.Executors {
		es := &pb.PipelineDeploymentConfig_ExecutorSpec{}
		if e.Importer != nil {
			es.Spec = &pb.PipelineDeploymentConfig_ExecutorSpec_Importer{Importer: importerSpec(e.Importer)}
		} else {
			es.Spec = &pb.PipelineDeploymentConfig_ExecutorSpec_Container{Container: containerSpec(e.Container)}
		}
		c.executors[labels[label]] = es
	}
	name := c.reserve("comp-" + SanitizeName(ir.Spec.GetPipelineInfo().GetName()))
	c.spec.Components[name] = fix(ir.Spec.GetRoot())
	return name, nil
}

// toStruct converts a proto message to a Struct through protojson.
func toStruct(m proto.Message) (*structpb.Struct, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(b, st); err != nil {
		return nil, err
	}
	return st, nil
}
