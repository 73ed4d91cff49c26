package kfpir

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/internal/graph"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// newerFields are IR fields that KFP added after the pinned proto; mlpipe
// reads them from the raw document (docs/kfp-semantics.md §6.1).
var newerFields = map[string]bool{
	"resourceCpuLimit": true, "resourceCpuRequest": true, "resourceMemoryLimit": true, "resourceMemoryRequest": true,
	"resourceType": true, "resourceCount": true, "cacheKey": true, "literals": true, "downloadToWorkspace": true,
	"singlePlatformSpecs": true, "taskConfigPassthroughs": true, "customPath": true, "custom_path": true,
}

// ValidateIR checks a loaded IR document: schema version, names, component
// and executor references, producers, inputs, conditions, cycles, and
// fields that no KFP version defines.
func ValidateIR(ir *IR) error {
	d := &diag.List{File: ir.File}
	spec := ir.Spec
	if spec.GetSchemaVersion() != SchemaVersion {
		d.Path("schemaVersion", "must be %q (KFP API servers reject other versions), found %q", SchemaVersion, spec.GetSchemaVersion())
	}
	if name := spec.GetPipelineInfo().GetName(); name == "" {
		d.Path("pipelineInfo.name", "is empty")
	} else if !PipelineName.MatchString(name) {
		d.Path("pipelineInfo.name", "%q must match [a-z0-9][a-z0-9-]{0,127} (KFP API servers reject other names on upload)", name)
	}
	if spec.GetRoot() == nil {
		d.Path("root", "is missing")
	} else if spec.GetRoot().GetDag() == nil {
		d.Path("root", "must be a DAG")
	}
	unknownFields(d, ir.Raw, (&pb.PipelineSpec{}).ProtoReflect().Descriptor(), "")
	if dep, ok := ir.Raw["deploymentSpec"].(map[string]any); ok {
		unknownFields(d, dep, (&pb.PipelineDeploymentConfig{}).ProtoReflect().Descriptor(), "deploymentSpec")
	}
	used := map[string]bool{}
	if spec.GetRoot() != nil {
		validateComponent(d, ir, "root", spec.GetRoot(), used)
	}
	for _, name := range slices.Sorted(maps.Keys(spec.GetComponents())) {
		validateComponent(d, ir, "components."+name, spec.GetComponents()[name], used)
	}
	for _, label := range slices.Sorted(maps.Keys(ir.Executors)) {
		e := ir.Executors[label]
		if e.Container != nil && e.Container.Image == "" {
			d.Path("deploymentSpec.executors."+label+".container.image", "is empty")
		}
	}
	componentCycles(d, spec)
	if n := ExpandedTasks(spec); n > MaxExpandedTasks {
		d.Path("root", "unfolds into more than %d tasks (sub-DAGs that each call the next several times?): refusing it", MaxExpandedTasks)
	}
	if ds, ok := d.Err().(diag.Diagnostics); ok {
		return withLines(ir.src, ds)
	}
	return nil
}

// componentCycles reports DAG components that reach themselves through
// their tasks' componentRef: running one would expand without end.
func componentCycles(d *diag.List, spec *pb.PipelineSpec) {
	comps := spec.GetComponents()
	var g graph.Graph
	refBy := map[[2]string]string{} // (component, callee) → the task that calls it
	for _, name := range slices.Sorted(maps.Keys(comps)) {
		tasks := comps[name].GetDag().GetTasks()
		g.Add(name)
		for _, key := range slices.Sorted(maps.Keys(tasks)) {
			ref := tasks[key].GetComponentRef().GetName()
			if comps[ref] == nil {
				continue
			}
			g.Add(name, ref)
			if _, ok := refBy[[2]string{name, ref}]; !ok {
				refBy[[2]string{name, ref}] = key
			}
		}
	}
	for _, cyc := range g.Cycles() {
		from, to := cyc[len(cyc)-2], cyc[len(cyc)-1]
		d.Path("components."+from+".dag.tasks."+refBy[[2]string{from, to}]+".componentRef.name",
			"component reference cycle: %s (a DAG component may not contain itself)", strings.Join(cyc, " -> "))
	}
}

func validateComponent(d *diag.List, ir *IR, path string, cs *pb.ComponentSpec, used map[string]bool) {
	if label := cs.GetExecutorLabel(); label != "" {
		if ir.Executors[label] == nil {
			d.Path(path+".executorLabel", "executor %q is not in deploymentSpec.executors", label)
		}
		return
	}
	dag := cs.GetDag()
	if dag == nil {
		d.Path(path, "has neither dag nor executorLabel")
		return
	}
	tasks := dag.GetTasks()
	if len(tasks) == 0 {
		d.Path(path+".dag.tasks", "is empty")
	}
	outputsOf := func(producer string) *pb.ComponentOutputsSpec {
		pt := tasks[producer]
		if pt == nil {
			return nil
		}
		return ir.Component(pt.GetComponentRef().GetName()).GetOutputDefinitions()
	}
	for _, key := range slices.Sorted(maps.Keys(tasks)) {
		validateTask(d, ir, cs, path, key, outputsOf)
	}
	validateDagOutputs(d, path, dag)
	if cyc := irCycle(tasks); cyc != nil {
		d.Path(path+".dag.tasks", "dependency cycle: %s", strings.Join(cyc, " -> "))
	}
}

// validateTask checks one task of a DAG component: its name, component,
// dependencies, inputs, the callee's required inputs, its condition and
// its iterator.
func validateTask(d *diag.List, ir *IR, cs *pb.ComponentSpec, path, key string, outputsOf func(string) *pb.ComponentOutputsSpec) {
	tasks := cs.GetDag().GetTasks()
	inParams := cs.GetInputDefinitions().GetParameters()
	inArts := cs.GetInputDefinitions().GetArtifacts()
	t := tasks[key]
	tp := path + ".dag.tasks." + key
	if t.GetTaskInfo().GetName() == "" {
		d.Path(tp+".taskInfo.name", "is empty (the KFP backend rejects tasks without a name)")
	}
	ref := t.GetComponentRef().GetName()
	callee := ir.Component(ref)
	if ref == "" || ref == "root" || ir.Spec.GetComponents()[ref] == nil {
		d.Path(tp+".componentRef.name", "component %q is not in components", ref)
	}
	for _, dep := range t.GetDependentTasks() {
		if tasks[dep] == nil {
			d.Path(tp+".dependentTasks", "unknown task %q", dep)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(t.GetInputs().GetParameters())) {
		in := t.GetInputs().GetParameters()[n]
		ip := tp + ".inputs.parameters." + n
		switch k := in.Kind.(type) {
		case *pb.TaskInputsSpec_InputParameterSpec_ComponentInputParameter:
			if inParams[k.ComponentInputParameter] == nil {
				d.Path(ip+".componentInputParameter", "%q is not an input parameter of %s", k.ComponentInputParameter, path)
			}
		case *pb.TaskInputsSpec_InputParameterSpec_TaskOutputParameter:
			p := k.TaskOutputParameter.GetProducerTask()
			if tasks[p] == nil {
				d.Path(ip+".taskOutputParameter.producerTask", "unknown task %q", p)
			} else if outs := outputsOf(p); outs.GetParameters()[k.TaskOutputParameter.GetOutputParameterKey()] == nil {
				d.Path(ip+".taskOutputParameter.outputParameterKey", "task %q has no output parameter %q", p, k.TaskOutputParameter.GetOutputParameterKey())
			}
		case *pb.TaskInputsSpec_InputParameterSpec_TaskFinalStatus_:
			if tasks[k.TaskFinalStatus.GetProducerTask()] == nil {
				d.Path(ip+".taskFinalStatus.producerTask", "unknown task %q", k.TaskFinalStatus.GetProducerTask())
			}
		case *pb.TaskInputsSpec_InputParameterSpec_RuntimeValue:
			if _, ok := k.RuntimeValue.GetValue().(*pb.ValueOrRuntimeParameter_Constant); !ok {
				d.Path(ip+".runtimeValue", "only runtimeValue.constant is supported (constantValue and runtimeParameter are deprecated)")
			}
		default:
			d.Path(ip, "has no value (componentInputParameter, taskOutputParameter, runtimeValue or taskFinalStatus)")
		}
		if sel := in.GetParameterExpressionSelector(); sel != "" {
			if _, err := compileSelector(sel); err != nil {
				d.Path(ip+".parameterExpressionSelector", "%v", err)
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(t.GetInputs().GetArtifacts())) {
		in := t.GetInputs().GetArtifacts()[n]
		ip := tp + ".inputs.artifacts." + n
		switch k := in.Kind.(type) {
		case *pb.TaskInputsSpec_InputArtifactSpec_ComponentInputArtifact:
			if inArts[k.ComponentInputArtifact] == nil {
				d.Path(ip+".componentInputArtifact", "%q is not an input artifact of %s", k.ComponentInputArtifact, path)
			}
		case *pb.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifact:
			p := k.TaskOutputArtifact.GetProducerTask()
			if tasks[p] == nil {
				d.Path(ip+".taskOutputArtifact.producerTask", "unknown task %q", p)
			} else if outs := outputsOf(p); outs.GetArtifacts()[k.TaskOutputArtifact.GetOutputArtifactKey()] == nil {
				d.Path(ip+".taskOutputArtifact.outputArtifactKey", "task %q has no output artifact %q", p, k.TaskOutputArtifact.GetOutputArtifactKey())
			}
		default:
			d.Path(ip, "has no value (componentInputArtifact or taskOutputArtifact)")
		}
	}
	if callee != nil {
		// Required inputs of the callee must be supplied.
		for _, n := range slices.Sorted(maps.Keys(callee.GetInputDefinitions().GetParameters())) {
			ps := callee.GetInputDefinitions().GetParameters()[n]
			if ps.GetIsOptional() || ps.GetDefaultValue() != nil || t.GetInputs().GetParameters()[n] != nil {
				continue
			}
			if it := t.GetParameterIterator(); it != nil && it.GetItemInput() == n {
				continue
			}
			if ps.GetParameterType() == pb.ParameterType_TASK_FINAL_STATUS || ir.TaskConfig[ref+"/"+n] {
				continue
			}
			d.Path(tp+".inputs.parameters", "missing required input %q of %s", n, ref)
		}
	}
	if cond := t.GetTriggerPolicy().GetCondition(); cond != "" {
		if err := checkIRCondition(cond); err != nil {
			d.Path(tp+".triggerPolicy.condition", "%v", err)
		}
	}
	if it := t.GetParameterIterator(); it != nil {
		if ip := it.GetItems().GetInputParameter(); ip != "" && t.GetInputs().GetParameters()[ip] == nil {
			d.Path(tp+".parameterIterator.items.inputParameter", "%q is not an input of the task", ip)
		}
		if it.GetItemInput() == "" {
			d.Path(tp+".parameterIterator.itemInput", "is empty")
		}
	}
	if it := t.GetArtifactIterator(); it != nil {
		if ia := it.GetItems().GetInputArtifact(); t.GetInputs().GetArtifacts()[ia] == nil {
			d.Path(tp+".artifactIterator.items.inputArtifact", "%q is not an input of the task", ia)
		}
	}
}

// validateDagOutputs checks that a DAG's outputs name its own tasks.
func validateDagOutputs(d *diag.List, path string, dag *pb.DagSpec) {
	tasks := dag.GetTasks()
	for _, n := range slices.Sorted(maps.Keys(dag.GetOutputs().GetParameters())) {
		o := dag.GetOutputs().GetParameters()[n]
		var sels []*pb.DagOutputsSpec_ParameterSelectorSpec
		if v := o.GetValueFromParameter(); v != nil {
			sels = append(sels, v)
		}
		sels = append(sels, o.GetValueFromOneof().GetParameterSelectors()...)
		for _, s := range sels {
			if tasks[s.GetProducerSubtask()] == nil {
				d.Path(path+".dag.outputs.parameters."+n, "unknown producerSubtask %q", s.GetProducerSubtask())
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(dag.GetOutputs().GetArtifacts())) {
		for _, s := range dag.GetOutputs().GetArtifacts()[n].GetArtifactSelectors() {
			if tasks[s.GetProducerSubtask()] == nil {
				d.Path(path+".dag.outputs.artifacts."+n, "unknown producerSubtask %q", s.GetProducerSubtask())
			}
		}
	}
}

// IRDependencies returns the sibling tasks t waits for: dependentTasks
// united with every producer of its inputs (docs/kfp-semantics.md §0, item 3).
func IRDependencies(t *pb.PipelineTaskSpec) []string {
	set := map[string]bool{}
	for _, d := range t.GetDependentTasks() {
		set[d] = true
	}
	for _, in := range t.GetInputs().GetParameters() {
		if p := in.GetTaskOutputParameter().GetProducerTask(); p != "" {
			set[p] = true
		}
		if p := in.GetTaskFinalStatus().GetProducerTask(); p != "" {
			set[p] = true
		}
	}
	for _, in := range t.GetInputs().GetArtifacts() {
		if p := in.GetTaskOutputArtifact().GetProducerTask(); p != "" {
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func irCycle(tasks map[string]*pb.PipelineTaskSpec) []string {
	return TaskGraph(tasks).Cycle()
}

// TaskGraph is the dependency graph of a DAG's tasks (IRDependencies),
// nodes by name.
func TaskGraph(tasks map[string]*pb.PipelineTaskSpec) *graph.Graph {
	var g graph.Graph
	for _, k := range slices.Sorted(maps.Keys(tasks)) {
		g.Add(k, IRDependencies(tasks[k])...)
	}
	return &g
}

// unknownFields reports keys that the pinned proto does not define and that
// are not among the newer fields mlpipe knows.
func unknownFields(d *diag.List, raw map[string]any, md protoreflect.MessageDescriptor, path string) {
	if raw == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(k))
		}
		p := k
		if path != "" {
			p = path + "." + k
		}
		if fd == nil {
			if !newerFields[k] {
				d.Path(p, "unknown field %q (no KFP version defines it here)", k)
			}
			continue
		}
		if fd.Kind() == protoreflect.EnumKind {
			checkEnum(d, raw[k], fd, p)
			continue
		}
		if fd.Kind() != protoreflect.MessageKind {
			continue
		}
		sub := fd.Message()
		switch sub.FullName() {
		case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Duration":
			continue
		}
		v := raw[k]
		switch {
		case fd.IsMap():
			m, _ := v.(map[string]any)
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				continue
			}
			vd := fd.MapValue().Message()
			switch vd.FullName() {
			case "google.protobuf.Struct", "google.protobuf.Value":
				continue
			}
			for _, mk := range slices.Sorted(maps.Keys(m)) {
				if mm, ok := m[mk].(map[string]any); ok {
					unknownFields(d, mm, vd, p+"."+mk)
				}
			}
		case fd.IsList():
			l, _ := v.([]any)
			for i, e := range l {
				if mm, ok := e.(map[string]any); ok {
					unknownFields(d, mm, sub, fmt.Sprintf("%s[%d]", p, i))
				}
			}
		default:
			if mm, ok := v.(map[string]any); ok {
				unknownFields(d, mm, sub, p)
			}
		}
	}
}

// newerEnumValues are enum values KFP added after the pinned proto.
var newerEnumValues = map[string]bool{"TASK_CONFIG": true}

// checkEnum reports an enum field whose value the proto does not define:
// the loader's lax parse would read it as the zero value, while the API
// server refuses the whole spec ("unknown template format").
func checkEnum(d *diag.List, v any, fd protoreflect.FieldDescriptor, path string) {
	values := fd.Enum().Values()
	check := func(v any, path string) {
		switch x := v.(type) {
		case string:
			if values.ByName(protoreflect.Name(x)) != nil || newerEnumValues[x] {
				return
			}
		case int64:
			if values.ByNumber(protoreflect.EnumNumber(x)) != nil {
				return
			}
		case float64:
			if x == float64(int32(x)) && values.ByNumber(protoreflect.EnumNumber(int32(x))) != nil {
				return
			}
		case nil:
			return
		}
		names := make([]string, 0, values.Len())
		for i := 0; i < values.Len(); i++ {
			if n := string(values.Get(i).Name()); !strings.HasSuffix(n, "_UNSPECIFIED") {
				names = append(names, n)
			}
		}
		d.Path(path, "unknown value %s (one of %s)", jsonValue(v), strings.Join(names, ", "))
	}
	if l, ok := v.([]any); ok && fd.IsList() {
		for i, e := range l {
			check(e, fmt.Sprintf("%s[%d]", path, i))
		}
		return
	}
	check(v, path)
}

func jsonValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
