package compiler

import (
	"fmt"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
)

// Version is mlpipe's version, written into compiled IR as sdkVersion.
const Version = "0.1.0"

// Compile turns a loaded pipeline into a KFP v2 PipelineSpec. The result is
// deterministic: the same pipeline gives the same IR.
func Compile(p *Pipeline) (*pb.PipelineSpec, error) {
	c := &compiler{
		spec: &pb.PipelineSpec{
			PipelineInfo:  &pb.PipelineInfo{Name: p.Name, Description: p.Description},
			SchemaVersion: kfpir.SchemaVersion,
			SdkVersion:    "mlpipe-" + Version,
			Components:    map[string]*pb.ComponentSpec{},
		},
		executors:      map[string]*pb.PipelineDeploymentConfig_ExecutorSpec{},
		used:           map[string]bool{},
		dedup:          map[string]string{},
		fastDedup:      map[string]string{},
		resourceExtras: map[string]map[string]any{},
	}
	root, err := c.compileDAG(p)
	if err != nil {
		return nil, err
	}
	c.spec.Root = root
	dep := &pb.PipelineDeploymentConfig{Executors: c.executors}
	st, err := toStruct(dep)
	if err != nil {
		return nil, fmt.Errorf("encode deploymentSpec: %w", err)
	}
	if err := mergeResourceExtras(st, c.resourceExtras); err != nil {
		return nil, err
	}
	c.spec.DeploymentSpec = st
	return c.spec, nil
}

type compiler struct {
	spec      *pb.PipelineSpec
	executors map[string]*pb.PipelineDeploymentConfig_ExecutorSpec
	used      map[string]bool   // component names and executor labels in use
	dedup     map[string]string // content key -> component name
	fastDedup map[string]string // component pointer and task settings -> name
	// resourceExtras holds, by executor label, resource fields newer than
	// the pinned proto, merged into deploymentSpec after encoding.
	resourceExtras map[string]map[string]any
	lastComp       string
	groupN         int
}

// group is a DAG component mlpipe generates around tasks: an exit handler,
// a loop or a condition.
type group struct {
	key  string
	comp *pb.ComponentSpec
	task *pb.PipelineTaskSpec
	kind string // "exit", "loop", "cond"
}

// dagScope is the state of one pipeline DAG being compiled.
type dagScope struct {
	p      *Pipeline
	top    *pb.ComponentSpec // the pipeline's own DAG component
	exit   *group            // exit-handler group when the pipeline has finally tasks
	chains map[string][]*group
	specs  map[string]*pb.PipelineTaskSpec // task name -> its own task spec
	keys   map[string]string               // task name -> IR task key
}

func (c *compiler) nextGroup(prefix string) string {
	c.groupN++
	return fmt.Sprintf("%s-%d", prefix, c.groupN)
}

func newDAGComponent() *pb.ComponentSpec {
	return &pb.ComponentSpec{Implementation: &pb.ComponentSpec_Dag{Dag: &pb.DagSpec{Tasks: map[string]*pb.PipelineTaskSpec{}}}}
}

func dagOf(cs *pb.ComponentSpec) *pb.DagSpec { return cs.GetDag() }

// compileDAG compiles a pipeline into a DAG component (the root, or a
// sub-pipeline).
func (c *compiler) compileDAG(p *Pipeline) (*pb.ComponentSpec, error) {
	s := &dagScope{p: p, top: newDAGComponent(), chains: map[string][]*group{}, specs: map[string]*pb.PipelineTaskSpec{}, keys: map[string]string{}}
	s.top.InputDefinitions = inputDefs(p.Inputs)
	for _, t := range append(append([]*Task(nil), p.Tasks...), p.Finally...) {
		s.keys[t.Name] = SanitizeName(t.Name)
	}
	if len(p.Finally) > 0 {
		key := c.nextGroup("exit-handler")
		s.exit = &group{key: key, comp: newDAGComponent(), kind: "exit",
			task: &pb.PipelineTaskSpec{TaskInfo: &pb.PipelineTaskInfo{Name: key}, ComponentRef: &pb.ComponentRef{Name: c.reserve("comp-" + key)}}}
		dagOf(s.top).Tasks[key] = s.exit.task
		c.spec.Components[s.exit.task.ComponentRef.Name] = s.exit.comp
	}
	// Create every task's groups and own spec first, so that references can
	// be bound in any order.
	for _, t := range p.Tasks {
		if err := c.layoutTask(s, t); err != nil {
			return nil, err
		}
	}
	for _, t := range p.Finally {
		if err := c.layoutTask(s, t); err != nil {
			return nil, err
		}
	}
	for _, t := range append(append([]*Task(nil), p.Tasks...), p.Finally...) {
		if err := c.wireTask(s, t); err != nil {
			return nil, fmt.Errorf("task %s: %w", t.Name, err)
		}
	}
	// Pipeline outputs.
	for _, o := range p.Outputs {
		pt := p.task(o.Ref.Name)
		ty, _ := p.outputType(o.Ref)
		key, producer := c.surface(s, pt, o.Ref.Output, 0)
		addDagOutput(s.top, o.Name, producer, key, ty)
	}
	sortDeps(s.top)
	return s.top, nil
}

// chainFrom returns the groups of task t below the level where the chain
// of the other end starts: level 0 is the pipeline DAG; the exit group,
// when present, is level 1 for regular tasks.
func (s *dagScope) chainBelow(t *Task, level int) []*group {
	ch := s.chains[t.Name]
	if level > len(ch) {
		return nil
	}
	return ch[level:]
}

// commonLevel is the depth of the deepest group two tasks share.
func (s *dagScope) commonLevel(a, b *Task) int {
	ca, cb := s.chains[a.Name], s.chains[b.Name]
	n := 0
	for n < len(ca) && n < len(cb) && ca[n] == cb[n] {
		n++
	}
	return n
}

// nodeKey is the key of the first node of t below level: a group or t.
func (s *dagScope) nodeKey(t *Task, level int) (string, *pb.PipelineTaskSpec) {
	ch := s.chainBelow(t, level)
	if len(ch) > 0 {
		return ch[0].key, ch[0].task
	}
	return s.keys[t.Name], s.specs[t.Name]
}

// dagAt returns the DAG holding the nodes at level for task t.
func (s *dagScope) dagAt(t *Task, level int) *pb.ComponentSpec {
	if level == 0 {
		return s.top
	}
	return s.chains[t.Name][level-1].comp
}

// layoutTask creates the groups of a task (loop, condition) and its own
// task spec, placed in the innermost DAG.
func (c *compiler) layoutTask(s *dagScope, t *Task) error {
	var chain []*group
	parent := s.top
	if s.exit != nil && !t.Finally {
		chain = append(chain, s.exit)
		parent = s.exit.comp
	}
	if t.ForEach != nil {
		key := c.nextGroup("for-loop")
		g := &group{key: key, comp: newDAGComponent(), kind: "loop",
			task: &pb.PipelineTaskSpec{TaskInfo: &pb.PipelineTaskInfo{Name: key}, ComponentRef: &pb.ComponentRef{Name: c.reserve("comp-" + key)}}}
		dagOf(parent).Tasks[key] = g.task
		c.spec.Components[g.task.ComponentRef.Name] = g.comp
		chain = append(chain, g)
		parent = g.comp
	}
	if t.When != "" {
		key := c.nextGroup("condition")
		g := &group{key: key, comp: newDAGComponent(), kind: "cond",
			task: &pb.PipelineTaskSpec{TaskInfo: &pb.PipelineTaskInfo{Name: key}, ComponentRef: &pb.ComponentRef{Name: c.reserve("comp-" + key)}}}
		dagOf(parent).Tasks[key] = g.task
		c.spec.Components[g.task.ComponentRef.Name] = g.comp
		chain = append(chain, g)
		parent = g.comp
	}
	s.chains[t.Name] = chain
	compName, err := c.taskComponent(t)
	if err != nil {
		return err
	}
	ts := &pb.PipelineTaskSpec{
		TaskInfo:     &pb.PipelineTaskInfo{Name: t.Name},
		ComponentRef: &pb.ComponentRef{Name: compName},
	}
	if !t.Component.IsDAG() {
		enable := t.Cache == nil || *t.Cache
		ts.CachingOptions = &pb.PipelineTaskSpec_CachingOptions{EnableCache: enable}
		if t.Retry != nil && t.Retry.Max > 0 {
			ts.RetryPolicy = retryPolicy(t.Retry)
		}
	}
	if t.Finally {
		ts.TriggerPolicy = &pb.PipelineTaskSpec_TriggerPolicy{Strategy: pb.PipelineTaskSpec_TriggerPolicy_ALL_UPSTREAM_TASKS_COMPLETED}
		ts.DependentTasks = append(ts.DependentTasks, s.exit.key)
	}
	dagOf(parent).Tasks[s.keys[t.Name]] = ts
	s.specs[t.Name] = ts
	return nil
}

// wireTask binds a task's inputs, loop source, condition and after: list.
func (c *compiler) wireTask(s *dagScope, t *Task) error {
	chain := s.chains[t.Name]
	ts := s.specs[t.Name]
	var loop, cond *group
	for _, g := range chain {
		switch g.kind {
		case "loop":
			loop = g
		case "cond":
			cond = g
		}
	}
	if ref := t.Resources.GPURef; ref != nil {
		ensureInputs(ts)
		ts.Inputs.Parameters["pipelinechannel--"+ref.Name] = c.bindParam(s, t, ref, "")
	}
	itemKey := ""
	itemArtifact := false
	if loop != nil {
		var err error
		itemKey, itemArtifact, err = c.wireLoop(s, t, loop)
		if err != nil {
			return err
		}
	}
	ensureInputs(ts)
	for _, in := range t.Inputs {
		decl := t.Component.Input(in.Name)
		v := in.Value
		switch {
		case v.Ref != nil:
			r := v.Ref
			if r.Kind == RefItem && itemArtifact {
				spec := c.bindArtifactItem(s, t, loop, itemKey)
				ts.Inputs.Artifacts[in.Name] = spec
				continue
			}
			if decl.Type.IsArtifact() {
				ts.Inputs.Artifacts[in.Name] = c.bindArtifact(s, t, r)
				continue
			}
			spec := c.bindParam(s, t, r, itemKey)
			ts.Inputs.Parameters[in.Name] = spec
		case v.Template != nil:
			var sb strings.Builder
			for _, part := range v.Template {
				if part.Ref == nil {
					sb.WriteString(part.Text)
					continue
				}
				if part.Ref.Kind == RefJobField {
					sb.WriteString(jobFields[part.Ref.Name])
					continue
				}
				key := channelKey(s, part.Ref, itemKey)
				ts.Inputs.Parameters[key] = c.bindParam(s, t, part.Ref, itemKey)
				fmt.Fprintf(&sb, "{{$.inputs.parameters['%s']}}", key)
			}
			ts.Inputs.Parameters[in.Name] = constantParam(sb.String())
		default:
			if v.Literal == nil {
				continue
			}
			val, err := kfpir.CheckValue(decl.Type.Param, v.Literal)
			if err != nil {
				return fmt.Errorf("input %s: %w", in.Name, err)
			}
			ts.Inputs.Parameters[in.Name] = constantParam(val)
		}
	}
	if cond != nil {
		if err := c.wireCondition(s, t, cond, itemKey); err != nil {
			return err
		}
	}
	for _, a := range t.After {
		at := s.p.task(a)
		lvl := s.commonLevel(t, at)
		pk, _ := s.nodeKey(at, lvl)
		_, node := s.nodeKey(t, lvl)
		addDep(node, pk)
	}
	pruneInputs(ts)
	return nil
}

// channelKey is the input key a reference travels under through groups.
func channelKey(s *dagScope, r *Ref, itemKey string) string {
	switch r.Kind {
	case RefInput:
		return "pipelinechannel--" + r.Name
	case RefTask:
		return "pipelinechannel--" + s.keys[r.Name] + "-" + r.Output
	case RefItem:
		if r.Name != "" {
			return itemKey + "-subvar-" + r.Name
		}
		return itemKey
	}
	return ""
}

// bindParam returns the input spec a parameter reference has inside task
// t's own task spec, declaring inputs on every group in between.
func (c *compiler) bindParam(s *dagScope, t *Task, r *Ref, itemKey string) *pb.TaskInputsSpec_InputParameterSpec {
	switch r.Kind {
	case RefJobField:
		return constantParam(jobFields[r.Name])
	case RefStatus:
		return &pb.TaskInputsSpec_InputParameterSpec{Kind: &pb.TaskInputsSpec_InputParameterSpec_TaskFinalStatus_{
			TaskFinalStatus: &pb.TaskInputsSpec_InputParameterSpec_TaskFinalStatus{ProducerTask: s.exit.key}}}
	case RefItem:
		// The item is an input of the loop body; pass it down through the
		// condition group if there is one.
		chain := s.chains[t.Name]
		li := loopIndex(chain)
		src := compInputParam(itemKey)
		spec := c.bindDownParam(chain[li+1:], itemKey, src, Type{Param: pb.ParameterType_STRUCT}, "", nil)
		if r.Name != "" {
			spec.ParameterExpressionSelector = fmt.Sprintf("parseJson(string_value)[%q]", r.Name)
		}
		return spec
	case RefInput:
		in := s.p.input(r.Name)
		return c.bindDownParam(s.chains[t.Name], channelKey(s, r, ""), compInputParam(r.Name), in.Type, "", nil)
	case RefTask:
		pt := s.p.task(r.Name)
		lvl := s.commonLevel(t, pt)
		ty, _ := s.p.outputType(r)
		key, producer := c.surface(s, pt, r.Output, lvl)
		src := &pb.TaskInputsSpec_InputParameterSpec{Kind: &pb.TaskInputsSpec_InputParameterSpec_TaskOutputParameter{
			TaskOutputParameter: &pb.TaskInputsSpec_InputParameterSpec_TaskOutputParameterSpec{ProducerTask: producer, OutputParameterKey: key}}}
		_, node := s.nodeKey(t, lvl)
		addDep(node, producer)
		return c.bindDownParam(s.chainBelow(t, lvl), channelKey(s, r, ""), src, ty, "", nil)
	}
	return nil
}

func loopIndex(chain []*group) int {
	for i, g := range chain {
		if g.kind == "loop" {
			return i
		}
	}
	return -1
}

// bindDownParam declares key on each group of chain (outer to inner),
// feeding the outermost from src, and returns the spec to use below the
// innermost group.
func (c *compiler) bindDownParam(chain []*group, key string, src *pb.TaskInputsSpec_InputParameterSpec, ty Type, _ string, _ any) *pb.TaskInputsSpec_InputParameterSpec {
	spec := src
	for _, g := range chain {
		ensureInputs(g.task)
		g.task.Inputs.Parameters[key] = spec
		declareParamInput(g.comp, key, ty)
		spec = compInputParam(key)
	}
	return cloneParamSpec(spec)
}

func (c *compiler) bindArtifact(s *dagScope, t *Task, r *Ref) *pb.TaskInputsSpec_InputArtifactSpec {
	pt := s.p.task(r.Name)
	lvl := s.commonLevel(t, pt)
	ty, _ := s.p.outputType(r)
	key, producer := c.surface(s, pt, r.Output, lvl)
	src := &pb.TaskInputsSpec_InputArtifactSpec{Kind: &pb.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifact{
		TaskOutputArtifact: &pb.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifactSpec{ProducerTask: producer, OutputArtifactKey: key}}}
	_, node := s.nodeKey(t, lvl)
	addDep(node, producer)
	return bindDownArtifact(s.chainBelow(t, lvl), channelKey(s, r, ""), src, ty)
}

func (c *compiler) bindArtifactItem(s *dagScope, t *Task, loop *group, itemKey string) *pb.TaskInputsSpec_InputArtifactSpec {
	chain := s.chains[t.Name]
	li := loopIndex(chain)
	src := &pb.TaskInputsSpec_InputArtifactSpec{Kind: &pb.TaskInputsSpec_InputArtifactSpec_ComponentInputArtifact{ComponentInputArtifact: itemKey}}
	ty := loop.comp.InputDefinitions.Artifacts[itemKey]
	return bindDownArtifact(chain[li+1:], itemKey, src, Type{Artifact: kfpir.SchemaTitle(ty.GetArtifactType())})
}

func bindDownArtifact(chain []*group, key string, src *pb.TaskInputsSpec_InputArtifactSpec, ty Type) *pb.TaskInputsSpec_InputArtifactSpec {
	spec := src
	for _, g := range chain {
		ensureInputs(g.task)
		g.task.Inputs.Artifacts[key] = spec
		declareArtifactInput(g.comp, key, ty)
		spec = &pb.TaskInputsSpec_InputArtifactSpec{Kind: &pb.TaskInputsSpec_InputArtifactSpec_ComponentInputArtifact{ComponentInputArtifact: key}}
	}
	return spec
}

// surface exposes output o of task pt through pt's groups below level and
// returns the output key and producer task key at that level.
func (c *compiler) surface(s *dagScope, pt *Task, o string, level int) (string, string) {
	key := o
	producer := s.keys[pt.Name]
	chain := s.chainBelow(pt, level)
	out := pt.Component.Output(o)
	ty := out.Type
	for i := len(chain) - 1; i >= 0; i-- {
		g := chain[i]
		if g.kind == "loop" {
			if ty.IsArtifact() {
				ty.List = true
			} else {
				ty = Type{Param: pb.ParameterType_LIST}
			}
		}
		outKey := "pipelinechannel--" + s.keys[pt.Name] + "-" + o
		addDagOutput(g.comp, outKey, producer, key, ty)
		key, producer = outKey, g.key
	}
	return key, producer
}

// wireLoop sets the loop group's iterator and returns the item input key.
func (c *compiler) wireLoop(s *dagScope, t *Task, loop *group) (string, bool, error) {
	chain := s.chains[t.Name]
	li := loopIndex(chain)
	above := chain[:li] // groups above the loop (exit handler)
	if t.Parallelism > 0 {
		loop.task.IteratorPolicy = &pb.PipelineTaskSpec_IteratorPolicy{ParallelismLimit: int32(t.Parallelism)}
	}
	fe := t.ForEach
	if fe.Ref == nil {
		items, _ := fe.Literal.([]any)
		n := strings.TrimPrefix(loop.key, "for-loop-")
		itemKey := "pipelinechannel--loop-item-param-" + n
		raw, err := canonicalJSON(items)
		if err != nil {
			return "", false, err
		}
		loop.task.Iterator = &pb.PipelineTaskSpec_ParameterIterator{ParameterIterator: &pb.ParameterIteratorSpec{
			ItemInput: itemKey,
			Items:     &pb.ParameterIteratorSpec_ItemsSpec{Kind: &pb.ParameterIteratorSpec_ItemsSpec_Raw{Raw: raw}}}}
		pt, ok := literalItemType(items)
		if !ok {
			pt = pb.ParameterType_STRING
		}
		declareParamInput(loop.comp, itemKey, Type{Param: pt})
		return itemKey, false, nil
	}
	r := fe.Ref
	key := channelKey(s, r, "")
	itemKey := key + "-loop-item"
	var ty Type
	var lvl int
	var src any
	switch r.Kind {
	case RefInput:
		ty = s.p.input(r.Name).Type
		lvl = 0
		src = compInputParam(r.Name)
	case RefTask:
		pt := s.p.task(r.Name)
		lvl = s.commonLevel(t, pt)
		ty, _ = s.p.outputType(r)
		k, producer := c.surface(s, pt, r.Output, lvl)
		_, node := s.nodeKey(t, lvl)
		addDep(node, producer)
		if ty.IsArtifact() {
			src = &pb.TaskInputsSpec_InputArtifactSpec{Kind: &pb.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifact{
				TaskOutputArtifact: &pb.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifactSpec{ProducerTask: producer, OutputArtifactKey: k}}}
		} else {
			src = &pb.TaskInputsSpec_InputParameterSpec{Kind: &pb.TaskInputsSpec_InputParameterSpec_TaskOutputParameter{
				TaskOutputParameter: &pb.TaskInputsSpec_InputParameterSpec_TaskOutputParameterSpec{ProducerTask: producer, OutputParameterKey: k}}}
		}
	}
	// Bind the items down to (and including) the loop group's own inputs.
	through := append(append([]*group(nil), above[min(lvl, len(above)):]...), loop)
	if ty.IsArtifact() {
		bindDownArtifact(through, key, src.(*pb.TaskInputsSpec_InputArtifactSpec), ty)
		loop.task.Iterator = &pb.PipelineTaskSpec_ArtifactIterator{ArtifactIterator: &pb.ArtifactIteratorSpec{
			ItemInput: itemKey,
			Items:     &pb.ArtifactIteratorSpec_ItemsSpec{InputArtifact: key}}}
		item := ty
		item.List = false
		declareArtifactInput(loop.comp, itemKey, item)
		return itemKey, true, nil
	}
	c.bindDownParam(through, key, src.(*pb.TaskInputsSpec_InputParameterSpec), ty, "", nil)
	loop.task.Iterator = &pb.PipelineTaskSpec_ParameterIterator{ParameterIterator: &pb.ParameterIteratorSpec{
		ItemInput: itemKey,
		Items:     &pb.ParameterIteratorSpec_ItemsSpec{Kind: &pb.ParameterIteratorSpec_ItemsSpec_InputParameter{InputParameter: key}}}}
	declareParamInput(loop.comp, itemKey, Type{Param: loopItemType(t)})
	return itemKey, false, nil
}

// loopItemType chooses the declared type of a loop item whose values are
// not known at compile time: the type of the inputs it feeds when they
// agree, STRUCT when only fields are used, else STRING.
func loopItemType(t *Task) pb.ParameterType_ParameterTypeEnum {
	var types []pb.ParameterType_ParameterTypeEnum
	fields := false
	for _, in := range t.Inputs {
		for _, r := range in.Value.Refs() {
			if r.Kind != RefItem {
				continue
			}
			if r.Name != "" {
				fields = true
				continue
			}
			if in.Value.Ref != nil {
				if d := t.Component.Input(in.Name); d != nil && !d.Type.IsArtifact() {
					types = append(types, d.Type.Param)
				}
			} else {
				types = append(types, pb.ParameterType_STRING)
			}
		}
	}
	if len(types) == 0 {
		if fields {
			return pb.ParameterType_STRUCT
		}
		return pb.ParameterType_STRING
	}
	for _, ty := range types[1:] {
		if ty != types[0] {
			return pb.ParameterType_STRING
		}
	}
	if fields && types[0] != pb.ParameterType_STRUCT {
		return pb.ParameterType_STRING
	}
	return types[0]
}

// wireCondition binds the references of when: to the condition group's
// inputs and sets its trigger policy.
func (c *compiler) wireCondition(s *dagScope, t *Task, cond *group, itemKey string) error {
	a, refs, err := parseWhen(t.When)
	if err != nil {
		return err
	}
	chain := s.chains[t.Name]
	ci := len(chain) - 1 // the condition group is innermost
	ensureInputs(cond.task)
	keys := map[string]string{}
	ints := map[string]bool{}
	for _, cr := range refs {
		r := &Ref{Kind: cr.Kind, Name: cr.Name, Output: cr.Output}
		switch cr.Kind {
		case RefInput:
			key := channelKey(s, r, "")
			c.bindDownParam(chain[:ci+1], key, compInputParam(cr.Name), s.p.input(cr.Name).Type, "", nil)
			keys[cr.String()] = key
			ints[cr.String()] = s.p.input(cr.Name).Type.Param == pb.ParameterType_NUMBER_INTEGER
		case RefTask:
			pt := s.p.task(cr.Name)
			lvl := s.commonLevel(t, pt)
			ty, _ := s.p.outputType(r)
			k, producer := c.surface(s, pt, cr.Output, lvl)
			src := &pb.TaskInputsSpec_InputParameterSpec{Kind: &pb.TaskInputsSpec_InputParameterSpec_TaskOutputParameter{
				TaskOutputParameter: &pb.TaskInputsSpec_InputParameterSpec_TaskOutputParameterSpec{ProducerTask: producer, OutputParameterKey: k}}}
			_, node := s.nodeKey(t, lvl)
			addDep(node, producer)
			key := channelKey(s, r, "")
			c.bindDownParam(chain[lvl:ci+1], key, src, ty, "", nil)
			keys[cr.String()] = key
			ints[cr.String()] = ty.Param == pb.ParameterType_NUMBER_INTEGER && !ty.IsArtifact()
		case RefItem:
			li := loopIndex(chain)
			c.bindDownParam(chain[li+1:ci+1], itemKey, compInputParam(itemKey), Type{Param: pb.ParameterType_STRUCT}, "", nil)
			keys["item"] = itemKey
			if li >= 0 {
				if d := chain[li].comp.InputDefinitions.GetParameters()[itemKey]; d != nil {
					ints["item"] = d.ParameterType == pb.ParameterType_NUMBER_INTEGER
				}
			}
		}
	}
	expr, err := rewriteWhen(a, func(r celRef) (string, bool) {
		return keys[r.String()], ints[r.String()]
	})
	if err != nil {
		return err
	}
	cond.task.TriggerPolicy = &pb.PipelineTaskSpec_TriggerPolicy{Condition: expr}
	pruneInputs(cond.task)
	return nil
}

// --- IR building helpers ---
