package runner

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
)

// dagRun is one execution of a DAG component: the root, a sub-pipeline, a
// group, or one iteration of a loop body.
type dagRun struct {
	r         *run
	comp      *pb.ComponentSpec
	compName  string
	path      string // "" for the root
	params    map[string]any
	artifacts map[string][]*RuntimeArtifact
	// exempt DAGs belong to an exit handler: fail-fast does not stop them.
	exempt bool
	// base is the remaining path length after this DAG (priority).
	base int
	// depth is how many DAGs enclose this one (0 for the root).
	depth int
}

func (d *dagRun) taskPath(key string) string {
	if d.path == "" {
		return key
	}
	return d.path + "/" + key
}

// execute runs the DAG's tasks as their dependencies finish and returns
// the DAG's state and the results of its tasks. Each task counts the
// dependencies it still waits for; a result makes its dependents ready
// when their count reaches zero, so a DAG of n tasks costs O(n + edges),
// not a scan of every task per result.
func (d *dagRun) execute(ctx context.Context) (State, map[string]*taskResult) {
	tasks := d.comp.GetDag().GetTasks()
	deps := make(map[string][]string, len(tasks))
	waiting := make(map[string]int, len(tasks))
	dependents := map[string][]string{}
	for k, t := range tasks {
		deps[k] = kfpir.IRDependencies(t)
	}
	d.platformDeps(tasks, deps)
	for k := range tasks {
		waiting[k] = len(deps[k]) // a dependency that is no task never resolves
		for _, dep := range deps[k] {
			dependents[dep] = append(dependents[dep], k)
		}
	}
	// Longest remaining path first, then by name.
	ready := &readyQueue{heights: d.r.heights(d.compName, d.comp)}
	for k := range tasks {
		if waiting[k] == 0 {
			heap.Push(ready, k)
		}
	}
	results := map[string]*taskResult{}
	finished := func(res *taskResult) {
		results[res.key] = res
		for _, k := range dependents[res.key] {
			if waiting[k]--; waiting[k] == 0 {
				heap.Push(ready, k)
			}
		}
	}
	done := make(chan *taskResult)
	running := 0
	for {
		for ready.Len() > 0 {
			k := heap.Pop(ready).(string)
			res, launch := d.decide(ctx, k, tasks[k], deps[k], results)
			if res != nil {
				finished(res)
				continue
			}
			running++
			go func() { done <- launch() }()
		}
		if running == 0 {
			break
		}
		running--
		finished(<-done)
	}
	state := Succeeded
	for _, res := range results {
		switch res.state {
		case Failed:
			state = Failed
		case Canceled:
			if state != Failed {
				state = Canceled
			}
		}
	}
	if len(results) < len(tasks) && state == Succeeded {
		state = Failed
	}
	return state, results
}

// taskFacts are what decides whether a ready task runs, before its inputs
// are resolved.
type taskFacts struct {
	canceled     bool // the run is cancelled
	failing      bool // a task failed and the run fails fast
	exempt       bool // the task belongs to an exit handler's DAG
	allCompleted bool // trigger strategy ALL_UPSTREAM_TASKS_COMPLETED (exit handlers, ignore_upstream_failure)
	deps         []string
	results      map[string]*taskResult
	target       string // the benchmarked task, if any
}

// verdict is what happens to a ready task: it runs, or it ends at once in
// state for the reason why.
type verdict struct {
	run     bool
	state   State
	why     string
	tainted bool // after the benchmarked task
}

// upstreamVerdict is the rule, without side effects (as Tekton's
// PipelineRunFacts): a cancelled run cancels the task; a task that needs
// its upstream to succeed is skipped (or cancelled) when one did not, and
// skipped when the run fails fast unless it is exempt; a task after the
// benchmarked one is skipped.
func upstreamVerdict(f taskFacts) verdict {
	if f.canceled {
		return verdict{state: Canceled, why: "run cancelled"}
	}
	if !f.allCompleted {
		for _, dep := range f.deps {
			if res := f.results[dep]; !res.state.OK() {
				why := "upstream task " + dep + " " + strings.ToLower(string(res.state))
				if res.state == Canceled {
					return verdict{state: Canceled, why: why}
				}
				return verdict{state: Skipped, why: why}
			}
		}
		if f.failing && !f.exempt {
			return verdict{state: Skipped, why: "not started: the run is failing (fail-fast; --keep-going runs independent tasks)"}
		}
	}
	for _, dep := range f.deps {
		if f.results[dep].tainted {
			return verdict{state: Skipped, why: "after the benchmarked task " + f.target, tainted: true}
		}
	}
	return verdict{run: true}
}

// decide either finishes a ready task at once (skipped, failed to resolve,
// cancelled) or returns the function that runs it.
func (d *dagRun) decide(ctx context.Context, key string, t *pb.PipelineTaskSpec, deps []string, results map[string]*taskResult) (*taskResult, func() *taskResult) {
	path := d.taskPath(key)
	finish := func(state State, msg string) *taskResult {
		d.r.recordSimple(path, t, state, msg)
		return &taskResult{key: key, state: state, message: msg}
	}
	strategy := t.GetTriggerPolicy().GetStrategy()
	completedStrategy := strategy == pb.PipelineTaskSpec_TriggerPolicy_ALL_UPSTREAM_TASKS_COMPLETED
	v := upstreamVerdict(taskFacts{
		canceled: ctx.Err() != nil, failing: d.r.failing(), exempt: d.exempt, allCompleted: completedStrategy,
		deps: deps, results: results, target: d.r.opts.Target,
	})
	if !v.run {
		r := finish(v.state, v.why)
		r.tainted = v.tainted
		return r, nil
	}
	callee := d.r.ir.Component(t.GetComponentRef().GetName())
	if callee == nil {
		d.r.fail()
		return finish(Failed, fmt.Sprintf("component %q is not defined", t.GetComponentRef().GetName())), nil
	}
	in, err := d.resolveInputs(t, callee, results)
	if err == nil {
		d.platformRefs(callee.GetExecutorLabel(), in, results)
	}
	if err != nil {
		d.r.fail()
		return finish(Failed, err.Error()), nil
	}
	if cond := t.GetTriggerPolicy().GetCondition(); cond != "" {
		ok, err := kfpir.EvalCondition(cond, in.params)
		if err != nil {
			d.r.fail()
			return finish(Failed, err.Error()), nil
		}
		if !ok {
			return finish(Skipped, conditionFalse(cond, t, in.params)), nil
		}
	}
	exempt := d.exempt || completedStrategy
	prio := d.r.heights(d.compName, d.comp)[key] + d.base
	return nil, func() *taskResult {
		res := d.r.execTask(ctx, d, key, t, callee, in, exempt, prio)
		res.key = key
		return res
	}
}

// execTask runs a task whose inputs are resolved: a loop, a nested DAG, an
// importer or a container.
func (r *run) execTask(ctx context.Context, d *dagRun, key string, t *pb.PipelineTaskSpec, callee *pb.ComponentSpec, in *resolvedInputs, exempt bool, prio int) *taskResult {
	path := d.taskPath(key)
	compName := t.GetComponentRef().GetName()
	if !kfpir.SafeName(key) {
		// The IR loader refuses such keys; see paths.go.
		r.fail()
		msg := fmt.Sprintf("task key %q is not a safe name", key)
		r.recordSimple(path, t, Failed, msg)
		return &taskResult{state: Failed, message: msg}
	}
	if callee.GetDag() != nil {
		if d.depth+1 > kfpir.MaxNesting {
			// Validation refuses component reference cycles; this bounds
			// an IR that did not go through it.
			return r.groupFailed(path, t, fmt.Sprintf("DAG nesting deeper than %d levels (does a component contain itself?)", kfpir.MaxNesting))
		}
		if t.GetParameterIterator() != nil || t.GetArtifactIterator() != nil {
			return r.execLoop(ctx, d, key, t, callee, in, exempt, prio)
		}
		sub := &dagRun{r: r, comp: callee, compName: compName, path: path, exempt: exempt, base: prio - 1, depth: d.depth + 1,
			params: dagParams(callee, in.params), artifacts: in.artifacts}
		r.recordGroup(path, t, Running, "")
		state, results := sub.execute(ctx)
		out, err := dagOutputs(callee, results)
		msg := ""
		if err != nil && state == Succeeded {
			state, msg = Failed, err.Error()
			r.fail()
		}
		if state == Failed && msg == "" {
			msg = firstFailure(results)
		}
		r.recordGroup(path, t, state, msg)
		return &taskResult{state: state, out: out, message: msg, tainted: anyTainted(results)}
	}
	if err := r.checkLiterals(compName, in.params); err != nil {
		r.fail()
		r.recordSimple(path, t, Failed, err.Error())
		return &taskResult{state: Failed, message: err.Error()}
	}
	e := r.ir.Executors[callee.GetExecutorLabel()]
	if e == nil {
		msg := fmt.Sprintf("executor %q is not defined", callee.GetExecutorLabel())
		r.fail()
		r.recordSimple(path, t, Failed, msg)
		return &taskResult{state: Failed, message: msg}
	}
	if e.Importer != nil {
		return r.execImporter(ctx, d, key, t, callee, e.Importer, in)
	}
	return r.execContainer(ctx, d, key, t, callee, e.Container, in, exempt, prio)
}

func firstFailure(results map[string]*taskResult) string {
	keys := make([]string, 0, len(results))
	for k := range results {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if results[k].state == Failed {
			if results[k].message != "" {
				return k + ": " + results[k].message
			}
			return k + " failed"
		}
	}
	return ""
}

// dagParams gives a DAG its inputs: the resolved values, and for optional
// inputs not supplied their default or null (§4.2 step 6).
func dagParams(callee *pb.ComponentSpec, params map[string]any) map[string]any {
	out := withDefaults(callee, params)
	for name := range callee.GetInputDefinitions().GetParameters() {
		if _, ok := out[name]; !ok {
			out[name] = nil
		}
	}
	return out
}

// dagOutputs computes a DAG's outputs from its tasks' results (§4.7, §4.8).
func dagOutputs(comp *pb.ComponentSpec, results map[string]*taskResult) (*outputs, error) {
	out := newOutputs()
	spec := comp.GetDag().GetOutputs()
	for name, p := range spec.GetParameters() {
		var sels []*pb.DagOutputsSpec_ParameterSelectorSpec
		if v := p.GetValueFromParameter(); v != nil {
			sels = append(sels, v)
		}
		sels = append(sels, p.GetValueFromOneof().GetParameterSelectors()...)
		for _, s := range sels {
			res := results[s.GetProducerSubtask()]
			if res == nil || !res.state.OK() || res.out == nil {
				continue
			}
			if v, ok := res.out.params[s.GetOutputParameterKey()]; ok {
				out.params[name] = v
				break
			}
		}
		if _, ok := out.params[name]; !ok && p.GetValueFromOneof() != nil {
			return out, fmt.Errorf("OneOf output %s: no branch produced a value", name)
		}
	}
	for name, a := range spec.GetArtifacts() {
		for _, s := range a.GetArtifactSelectors() {
			res := results[s.GetProducerSubtask()]
			if res == nil || !res.state.OK() || res.out == nil {
				continue
			}
			if arts, ok := res.out.artifacts[s.GetOutputArtifactKey()]; ok {
				out.artifacts[name] = arts
				break
			}
		}
		if _, ok := out.artifacts[name]; !ok && len(a.GetArtifactSelectors()) > 1 {
			return out, fmt.Errorf("OneOf output %s: no branch produced an artifact", name)
		}
	}
	return out, nil
}

// loopItems returns the items of a loop over parameters: a raw JSON list,
// or an input holding a list (or a JSON list as a string).
func loopItems(it *pb.ParameterIteratorSpec, in *resolvedInputs) ([]any, error) {
	var v any
	if raw := it.GetItems().GetRaw(); raw != "" {
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return nil, fmt.Errorf("loop items %q are not JSON: %v", raw, err)
		}
	} else {
		name := it.GetItems().GetInputParameter()
		var ok bool
		v, ok = in.params[name]
		if !ok {
			return nil, fmt.Errorf("loop items input %q has no value", name)
		}
	}
	if s, ok := v.(string); ok {
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("loop items %q are not a JSON list", s)
		}
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("loop items are a %T, not a list", v)
	}
	return l, nil
}

// execLoop runs a ParallelFor: one body DAG per item, at most
// parallelismLimit at once, outputs collected in item order (§4.4, §4.5).
func (r *run) execLoop(ctx context.Context, d *dagRun, key string, t *pb.PipelineTaskSpec, body *pb.ComponentSpec, in *resolvedInputs, exempt bool, prio int) *taskResult {
	path := d.taskPath(key)
	li, err := newLoopInputs(t, body, in)
	if err != nil {
		return r.groupFailed(path, t, err.Error())
	}
	n := li.len()
	limit := int(t.GetIteratorPolicy().GetParallelismLimit())
	if limit <= 0 || limit > n {
		limit = n
	}
	// Iterations beyond what the slots can run only wait: starting 10,000
	// at once costs their goroutines' memory and the scheduler's queue.
	limit = min(limit, max(maxLoopInFlight, 4*r.opts.MaxParallel))
	r.recordGroup(path, t, Running, "")
	if n == 0 {
		r.recordNotRun(path, body, Skipped, "the loop has no items")
	}
	results := make([]*taskResult, n)
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		if ctx.Err() != nil || (r.failing() && !exempt) {
			<-sem
			st, why := Skipped, "not started: the run is failing (fail-fast; --keep-going runs independent tasks)"
			if ctx.Err() != nil {
				st, why = Canceled, "run cancelled"
			}
			results[i] = &taskResult{state: st}
			r.recordNotRun(fmt.Sprintf("%s[%d]", path, i), body, st, why)
			continue
		}
		params, arts := li.iteration(i)
		sub := &dagRun{r: r, comp: body, compName: t.GetComponentRef().GetName(), path: fmt.Sprintf("%s[%d]", path, i),
			depth: d.depth + 1, exempt: exempt, base: prio - 1, params: dagParams(body, params), artifacts: arts}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = runIteration(ctx, sub, body)
		}(i)
	}
	wg.Wait()
	res := gatherIterations(body, results)
	r.recordGroup(path, t, res.state, res.message)
	return res
}

// readyQueue orders the tasks whose dependencies are final: longest
// remaining path first, then by name (container/heap).
type readyQueue struct {
	keys    []string
	heights map[string]int
}

func (q *readyQueue) Len() int { return len(q.keys) }
func (q *readyQueue) Less(i, j int) bool {
	a, b := q.keys[i], q.keys[j]
	if q.heights[a] != q.heights[b] {
		return q.heights[a] > q.heights[b]
	}
	return a < b
}
func (q *readyQueue) Swap(i, j int) { q.keys[i], q.keys[j] = q.keys[j], q.keys[i] }
func (q *readyQueue) Push(x any)    { q.keys = append(q.keys, x.(string)) }
func (q *readyQueue) Pop() any {
	k := q.keys[len(q.keys)-1]
	q.keys = q.keys[:len(q.keys)-1]
	return k
}

// maxLoopInFlight is the least number of iterations of one loop started at
// once (more with a larger --max-parallel).
const maxLoopInFlight = 64

// loopInputs are a ParallelFor's items and the inputs every iteration
// shares; iteration i gets the shared inputs and item i under itemKey.
type loopInputs struct {
	in       *resolvedInputs
	itemKey  string
	items    []any              // a parameter iterator's items
	artItems []*RuntimeArtifact // an artifact iterator's items
	isArt    bool
	itemType pb.ParameterType_ParameterTypeEnum
}

func newLoopInputs(t *pb.PipelineTaskSpec, body *pb.ComponentSpec, in *resolvedInputs) (*loopInputs, error) {
	li := &loopInputs{in: in}
	if it := t.GetParameterIterator(); it != nil {
		li.itemKey = it.GetItemInput()
		l, err := loopItems(it, in)
		if err != nil {
			return nil, err
		}
		li.items = l
	} else {
		it := t.GetArtifactIterator()
		li.itemKey, li.isArt = it.GetItemInput(), true
		li.artItems = in.artifacts[it.GetItems().GetInputArtifact()]
	}
	li.itemType = body.GetInputDefinitions().GetParameters()[li.itemKey].GetParameterType()
	return li, nil
}

func (li *loopInputs) len() int {
	if li.isArt {
		return len(li.artItems)
	}
	return len(li.items)
}

func (li *loopInputs) iteration(i int) (map[string]any, map[string][]*RuntimeArtifact) {
	params := maps.Clone(li.in.params)
	if params == nil {
		params = map[string]any{}
	}
	arts := maps.Clone(li.in.artifacts)
	if arts == nil {
		arts = map[string][]*RuntimeArtifact{}
	}
	if li.isArt {
		arts[li.itemKey] = []*RuntimeArtifact{li.artItems[i]}
		return params, arts
	}
	v := li.items[i]
	if li.itemType != pb.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED {
		if cv, err := coerceLoopItem(li.itemType, v); err == nil {
			v = cv
		}
	}
	params[li.itemKey] = v
	return params, arts
}

// runIteration runs one iteration's body DAG and reduces it to one result.
func runIteration(ctx context.Context, sub *dagRun, body *pb.ComponentSpec) *taskResult {
	state, res := sub.execute(ctx)
	out, err := dagOutputs(body, res)
	msg := ""
	if state == Failed {
		msg = firstFailure(res)
	}
	if err != nil && state == Succeeded {
		state, msg = Failed, err.Error()
	}
	return &taskResult{state: state, out: out, message: msg, tainted: anyTainted(res)}
}

// gatherIterations is the loop's result: failed if an iteration failed
// (the first failure's message), cancelled if one was, and every output
// collected as a list in item order.
func gatherIterations(body *pb.ComponentSpec, results []*taskResult) *taskResult {
	agg := &taskResult{state: Succeeded, out: newOutputs()}
	for name := range body.GetOutputDefinitions().GetParameters() {
		agg.out.params[name] = []any{}
	}
	for name := range body.GetOutputDefinitions().GetArtifacts() {
		agg.out.artifacts[name] = nil
	}
	for i, res := range results {
		switch res.state {
		case Failed:
			agg.state = Failed
			if agg.message == "" {
				agg.message = fmt.Sprintf("iteration %d: %s", i, res.message)
			}
		case Canceled:
			if agg.state != Failed {
				agg.state = Canceled
			}
		}
		agg.tainted = agg.tainted || res.tainted
		if res.out == nil {
			continue
		}
		for name, v := range res.out.params {
			agg.out.params[name] = append(agg.out.params[name].([]any), v)
		}
		for name, a := range res.out.artifacts {
			agg.out.artifacts[name] = append(agg.out.artifacts[name], a...)
		}
	}
	return agg
}

func anyTainted(results map[string]*taskResult) bool {
	for _, res := range results {
		if res.tainted {
			return true
		}
	}
	return false
}

func coerceLoopItem(t pb.ParameterType_ParameterTypeEnum, v any) (any, error) {
	if t == pb.ParameterType_STRING {
		if _, ok := v.(string); !ok {
			return FormatValue(v), nil
		}
	}
	return coerceParam(t, v)
}

func (r *run) groupFailed(path string, t *pb.PipelineTaskSpec, msg string) *taskResult {
	r.fail()
	r.recordGroup(path, t, Failed, msg)
	if body := r.ir.Component(t.GetComponentRef().GetName()); body.GetDag() != nil {
		r.recordNotRun(path, body, Skipped, "not started: "+msg)
	}
	return &taskResult{state: Failed, message: msg}
}

// heights returns, for each task of a DAG, the length of the longest chain
// of tasks from it to the end of the DAG (1 for a sink).
func (r *run) heights(name string, comp *pb.ComponentSpec) map[string]int {
	h, _ := r.heightsOf.get(context.Background(), name, func() (map[string]int, error) {
		return kfpir.TaskGraph(comp.GetDag().GetTasks()).Heights(), nil
	})
	return h
}
