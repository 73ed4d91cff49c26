package compiler

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/internal/yamlnode"
	"github.com/mlpipe/mlpipe/kfpir"
)

// Pipeline is a parsed pipeline.yaml (the format of docs/pipeline-format.md).
type Pipeline struct {
	File        string
	Dir         string
	Name        string
	Description string
	Inputs      []*Param
	Outputs     []*PipelineOutput
	Tasks       []*Task // regular tasks, in file order
	Finally     []*Task // exit-handler tasks, in file order
	Pos         yamlnode.Pos
	byName      map[string]*Task
}

// PipelineOutput maps a pipeline output to a task output.
type PipelineOutput struct {
	Name string
	Ref  *Ref
	Pos  yamlnode.Pos
}

// Task is one entry of tasks: or finally:.
type Task struct {
	Name          string
	Pos           yamlnode.Pos
	ComponentPath string
	ComponentPos  yamlnode.Pos
	Component     *Component
	Inputs        []*TaskInput
	After         []string
	AfterPos      []yamlnode.Pos
	When          string
	WhenPos       yamlnode.Pos
	ForEach       *Value // nil when the task is not looped
	Parallelism   int
	Resources     TaskResources
	Retry         *Retry
	Cache         *bool
	Env           []kfpir.EnvVar
	Finally       bool
}

// TaskInput is one argument of a task.
type TaskInput struct {
	Name  string
	Value *Value
	Pos   yamlnode.Pos
}

// TaskResources is the resources: block of a task.
type TaskResources struct {
	CPU    string // Kubernetes quantity: "2", "500m"
	Memory string // "4Gi", "512M"
	GPU    int
	// GPURef is set when gpu: is ${{ inputs.NAME }} (an Integer, or a
	// Boolean meaning one GPU or none), resolved at run time.
	GPURef  *Ref
	GPUType string
	Pos     yamlnode.Pos
}

// Retry is the retry: block of a task.
type Retry struct {
	Max        int
	Backoff    time.Duration
	Factor     float64
	MaxBackoff time.Duration
}

// Value is a task argument, an output mapping or a loop source: a literal,
// a whole-value reference, or a string template with references inside.
type Value struct {
	Literal  any  // when Ref == nil and Template == nil
	Ref      *Ref // ${{ ... }} alone: passes the typed value
	Template []TemplatePart
	Pos      yamlnode.Pos
}

// TemplatePart is literal text or a reference inside a string template.
type TemplatePart struct {
	Text string
	Ref  *Ref
}

// RefKind is what a reference points to.
type RefKind int

// Reference kinds.
const (
	RefInput    RefKind = iota // inputs.NAME
	RefTask                    // tasks.NAME.outputs.OUTPUT
	RefItem                    // item, item.FIELD
	RefStatus                  // pipeline.status
	RefJobField                // pipeline.run_id, pipeline.run_name, pipeline.task_name
)

// Ref is a parsed ${{ ... }} reference.
type Ref struct {
	Kind   RefKind
	Name   string // input name, task name, item field, job field
	Output string // task output
	Text   string
	Pos    yamlnode.Pos
}

var (
	refPattern    = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)
	identPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	taskPattern   = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	reservedGroup = regexp.MustCompile(`^(condition|condition-branches|for-loop|exit-handler)-[0-9]+$`)
)

var jobFields = map[string]string{
	"run_id":    "{{$.pipeline_job_uuid}}",
	"run_name":  "{{$.pipeline_job_name}}",
	"task_name": "{{$.pipeline_task_name}}",
}

// parseRef parses the inside of ${{ ... }}.
func parseRef(text string, p yamlnode.Pos) (*Ref, error) {
	parts := strings.Split(text, ".")
	r := &Ref{Text: text, Pos: p}
	switch {
	case len(parts) == 2 && parts[0] == "inputs":
		r.Kind, r.Name = RefInput, parts[1]
	case len(parts) == 4 && parts[0] == "tasks" && parts[2] == "outputs":
		r.Kind, r.Name, r.Output = RefTask, parts[1], parts[3]
	case len(parts) == 1 && parts[0] == "item":
		r.Kind = RefItem
	case len(parts) == 2 && parts[0] == "item":
		r.Kind, r.Name = RefItem, parts[1]
	case len(parts) == 2 && parts[0] == "pipeline" && parts[1] == "status":
		r.Kind = RefStatus
	case len(parts) == 2 && parts[0] == "pipeline" && jobFields[parts[1]] != "":
		r.Kind, r.Name = RefJobField, parts[1]
	default:
		return nil, fmt.Errorf("unknown reference ${{ %s }} (want inputs.NAME, tasks.NAME.outputs.NAME, item, item.FIELD or pipeline.status)", text)
	}
	for _, s := range parts {
		if s == "" {
			return nil, fmt.Errorf("malformed reference ${{ %s }}", text)
		}
	}
	return r, nil
}

// parseValue parses a YAML value that may hold references.
func parseValue(d *diag.List, n *yamlnode.Node) *Value {
	v := &Value{Pos: n.Pos}
	switch n.Kind {
	case yamlnode.String:
		s := n.Str
		locs := refPattern.FindAllStringSubmatchIndex(s, -1)
		if len(locs) == 0 {
			if strings.Contains(s, "${{") {
				d.Node(n, "unterminated reference: %q has ${{ without }}", s)
				return nil
			}
			v.Literal = s
			return v
		}
		if len(locs) == 1 && locs[0][0] == 0 && locs[0][1] == len(s) {
			r, err := parseRef(s[locs[0][2]:locs[0][3]], n.Pos)
			if err != nil {
				d.Node(n, "%v", err)
				return nil
			}
			v.Ref = r
			return v
		}
		last := 0
		for _, l := range locs {
			if l[0] > last {
				v.Template = append(v.Template, TemplatePart{Text: s[last:l[0]]})
			}
			r, err := parseRef(s[l[2]:l[3]], n.Pos)
			if err != nil {
				d.Node(n, "%v", err)
				return nil
			}
			v.Template = append(v.Template, TemplatePart{Ref: r})
			last = l[1]
		}
		if last < len(s) {
			if strings.Contains(s[last:], "${{") {
				d.Node(n, "unterminated reference in %q", s)
				return nil
			}
			v.Template = append(v.Template, TemplatePart{Text: s[last:]})
		}
		return v
	case yamlnode.Map, yamlnode.Seq:
		if containsRef(n) {
			d.Node(n, "references cannot be nested inside lists or mappings; pass them as separate inputs")
			return nil
		}
	}
	v.Literal = n.Value()
	return v
}

func containsRef(n *yamlnode.Node) bool {
	switch n.Kind {
	case yamlnode.String:
		return strings.Contains(n.Str, "${{")
	case yamlnode.Seq:
		for _, it := range n.Items {
			if containsRef(it) {
				return true
			}
		}
	case yamlnode.Map:
		for i, k := range n.Keys {
			if strings.Contains(k.Str, "${{") || containsRef(n.Vals[i]) {
				return true
			}
		}
	}
	return false
}

// Refs returns every reference in the value.
func (v *Value) Refs() []*Ref {
	if v == nil {
		return nil
	}
	if v.Ref != nil {
		return []*Ref{v.Ref}
	}
	var out []*Ref
	for _, p := range v.Template {
		if p.Ref != nil {
			out = append(out, p.Ref)
		}
	}
	return out
}

// LoadPipeline reads a pipeline.yaml (or a directory holding one) and loads
// every component it uses. All problems are returned together as
// diag.Diagnostics.
func LoadPipeline(path string) (*Pipeline, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err == nil && st.IsDir() {
		abs = filepath.Join(abs, "pipeline.yaml")
	}
	src, err := kfpir.ReadSource(abs)
	if err != nil {
		return nil, err
	}
	return newLoader().parsePipeline(abs, src, []string{abs})
}

// ParsePipeline parses pipeline.yaml bytes; components are resolved
// relative to the file's directory.
func ParsePipeline(file string, src []byte) (*Pipeline, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	return newLoader().parsePipeline(abs, src, []string{abs})
}

func (l *loader) parsePipeline(file string, src []byte, stack []string) (*Pipeline, error) {
	d := &diag.List{File: file}
	n, err := yamlnode.Parse(src)
	if err != nil {
		return nil, diag.YAMLError(file, err)
	}
	p := &Pipeline{File: file, Dir: filepath.Dir(file), Pos: n.Pos}
	if !expectMap(d, n, "pipeline") {
		return nil, d.Err()
	}
	checkKeys(d, n, "pipeline", "name", "description", "inputs", "outputs", "tasks", "finally")
	p.Name = str(d, n.Get("name"), "name")
	switch {
	case n.Get("name") == nil:
		d.Node(n, "pipeline has no name")
	case !kfpir.PipelineName.MatchString(p.Name):
		d.Node(n.Get("name"), "pipeline name %q must match [a-z0-9][a-z0-9-]* (at most 128 characters)", p.Name)
	}
	p.Description = str(d, n.Get("description"), "description")
	p.Inputs = parsePipelineInputs(d, n.Get("inputs"))
	if outs := n.Get("outputs"); outs != nil && outs.Kind != yamlnode.Null {
		if expectMap(d, outs, "outputs") {
			for i, k := range outs.Keys {
				if !identPattern.MatchString(k.Str) {
					d.Node(k, "output name %q must be an identifier ([A-Za-z_][A-Za-z0-9_]*)", k.Str)
				}
				v := parseValue(d, outs.Vals[i])
				if v == nil {
					continue
				}
				if v.Ref == nil || v.Ref.Kind != RefTask {
					d.Node(outs.Vals[i], "pipeline output %q must be a reference ${{ tasks.NAME.outputs.NAME }}", k.Str)
					continue
				}
				p.Outputs = append(p.Outputs, &PipelineOutput{Name: k.Str, Ref: v.Ref, Pos: k.Pos})
			}
		}
	}
	tasks := n.Get("tasks")
	if tasks == nil {
		d.Node(n, "pipeline has no tasks")
	} else if expectMap(d, tasks, "tasks") {
		if len(tasks.Keys) == 0 {
			d.Node(tasks, "pipeline has no tasks")
		}
		for i, k := range tasks.Keys {
			if t := l.parseTask(d, k, tasks.Vals[i], false, p.Dir, stack); t != nil {
				p.Tasks = append(p.Tasks, t)
			}
		}
	}
	if fin := n.Get("finally"); fin != nil && fin.Kind != yamlnode.Null {
		if expectMap(d, fin, "finally") {
			for i, k := range fin.Keys {
				if t := l.parseTask(d, k, fin.Vals[i], true, p.Dir, stack); t != nil {
					p.Finally = append(p.Finally, t)
				}
			}
		}
	}
	checkPipeline(d, p)
	if err := d.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

func parsePipelineInputs(d *diag.List, n *yamlnode.Node) []*Param {
	if n == nil || n.Kind == yamlnode.Null {
		return nil
	}
	if !expectMap(d, n, "inputs") {
		return nil
	}
	var out []*Param
	for i, k := range n.Keys {
		v := n.Vals[i]
		if !identPattern.MatchString(k.Str) {
			d.Node(k, "input name %q must be an identifier ([A-Za-z_][A-Za-z0-9_]*)", k.Str)
			continue
		}
		p := &Param{Name: k.Str, Pos: k.Pos}
		if !expectMap(d, v, "input "+k.Str) {
			continue
		}
		checkKeys(d, v, "input "+k.Str, "type", "default", "optional", "description")
		tn := v.Get("type")
		if tn == nil {
			d.Node(v, "input %q has no type (String, Integer, Float, Boolean, List or Struct)", k.Str)
			continue
		}
		t, known := ParseTypeName(tn.Text())
		if tn.Kind != yamlnode.String || !known || t.IsArtifact() || t.Param == pb.ParameterType_TASK_FINAL_STATUS {
			d.Node(tn, "input %q: type must be String, Integer, Float, Boolean, List or Struct, not %q", k.Str, tn.Text())
			continue
		}
		p.Type = t
		p.Description = str(d, v.Get("description"), "description")
		if o := v.Get("optional"); o != nil {
			if o.Kind != yamlnode.Bool {
				d.Node(o, "optional must be true or false")
			}
			p.Optional = o.Bool
		}
		if def := v.Get("default"); def != nil {
			if def.Kind == yamlnode.Null {
				p.Optional = true
			} else if val, err := kfpir.CheckValue(t.Param, def.Value()); err != nil {
				d.Node(def, "default of input %q: %v", k.Str, err)
			} else if containsRef(def) {
				d.Node(def, "default of input %q cannot hold a reference", k.Str)
			} else {
				p.Default, p.HasDefault = val, true
			}
		}
		out = append(out, p)
	}
	return out
}

func (l *loader) parseTask(d *diag.List, k, v *yamlnode.Node, finally bool, dir string, stack []string) *Task {
	t := &Task{Name: k.Str, Pos: k.Pos, Finally: finally}
	switch {
	case !taskPattern.MatchString(t.Name):
		d.Node(k, "task name %q must match [a-z][a-z0-9_-]*", t.Name)
	case reservedGroup.MatchString(t.Name):
		d.Node(k, "task name %q is reserved for the groups mlpipe generates", t.Name)
	case len(t.Name) > 100:
		d.Node(k, "task name is longer than 100 characters")
	}
	if !expectMap(d, v, "task "+t.Name) {
		return nil
	}
	checkKeys(d, v, "task "+t.Name, "component", "inputs", "after", "when", "for_each", "parallelism", "resources", "retry", "cache", "env")
	cn := v.Get("component")
	if cn == nil || cn.Kind != yamlnode.String || cn.Str == "" {
		d.Node(v, "task %q has no component (a directory with component.yaml, a component file or a pipeline.yaml)", t.Name)
	} else {
		t.ComponentPath, t.ComponentPos = cn.Str, cn.Pos
		path := cn.Str
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		c, err := l.component(path, stack)
		if err != nil {
			if ds, ok := err.(diag.Diagnostics); ok {
				d.AddAll(ds)
				d.Node(cn, "task %q: component %s has errors (above)", t.Name, cn.Str)
			} else {
				d.Node(cn, "task %q: cannot load component: %v", t.Name, unwrapPathErr(err))
			}
		} else {
			t.Component = c
		}
	}
	if in := v.Get("inputs"); in != nil && in.Kind != yamlnode.Null {
		if expectMap(d, in, "inputs") {
			for i, ik := range in.Keys {
				val := parseValue(d, in.Vals[i])
				if val == nil {
					continue
				}
				t.Inputs = append(t.Inputs, &TaskInput{Name: ik.Str, Value: val, Pos: ik.Pos})
			}
		}
	}
	if af := v.Get("after"); af != nil && af.Kind != yamlnode.Null {
		items := []*yamlnode.Node{af}
		if af.Kind == yamlnode.Seq {
			items = af.Items
		}
		for _, it := range items {
			if it.Kind != yamlnode.String {
				d.Node(it, "after must list task names")
				continue
			}
			t.After = append(t.After, it.Str)
			t.AfterPos = append(t.AfterPos, it.Pos)
		}
	}
	parseControlFlow(d, v, t)
	if rn := v.Get("resources"); rn != nil && rn.Kind != yamlnode.Null {
		t.Resources = parseResources(d, rn)
	}
	if rn := v.Get("retry"); rn != nil && rn.Kind != yamlnode.Null {
		t.Retry = parseRetry(d, rn)
	}
	if cn := v.Get("cache"); cn != nil {
		if cn.Kind != yamlnode.Bool {
			d.Node(cn, "cache must be true or false")
		} else {
			b := cn.Bool
			t.Cache = &b
		}
	}
	parseEnv(d, v, t)
	if finally {
		if t.ForEach != nil {
			d.Node(v.Get("for_each"), "finally tasks cannot loop")
		}
		if t.When != "" {
			d.Node(v.Get("when"), "finally tasks cannot have a condition")
		}
	}
	return t
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// AsComponent describes the pipeline as a component (for use as a
// sub-pipeline).
func (p *Pipeline) AsComponent() *Component {
	c := &Component{Name: p.Name, Description: p.Description, File: p.File, Dir: p.Dir, Pipeline: p}
	for _, in := range p.Inputs {
		cp := *in
		if cp.HasDefault {
			cp.Optional = true
		}
		c.Inputs = append(c.Inputs, &cp)
	}
	for _, o := range p.Outputs {
		t, ok := p.outputType(o.Ref)
		if !ok {
			continue
		}
		c.Outputs = append(c.Outputs, &Param{Name: o.Name, Type: t, Pos: o.Pos})
	}
	return c
}

// outputType returns the type a reference to a task output has outside the
// task's loop (a list when the task loops).
func (p *Pipeline) outputType(r *Ref) (Type, bool) {
	t := p.task(r.Name)
	if t == nil || t.Component == nil {
		return Type{}, false
	}
	o := t.Component.Output(r.Output)
	if o == nil {
		return Type{}, false
	}
	ty := o.Type
	if t.ForEach != nil {
		if ty.IsArtifact() {
			ty.List = true
		} else {
			ty = Type{Param: pb.ParameterType_LIST}
		}
	}
	return ty, true
}

func (p *Pipeline) task(name string) *Task {
	if p.byName == nil {
		p.byName = make(map[string]*Task, len(p.Tasks)+len(p.Finally))
		for _, t := range p.Finally {
			p.byName[t.Name] = t
		}
		for i := len(p.Tasks) - 1; i >= 0; i-- {
			p.byName[p.Tasks[i].Name] = p.Tasks[i]
		}
	}
	if t, ok := p.byName[name]; ok {
		return t
	}
	for _, t := range p.Tasks {
		if t.Name == name {
			return t
		}
	}
	for _, t := range p.Finally {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (p *Pipeline) input(name string) *Param { return findParam(p.Inputs, name) }

// sortedTaskNames is used for messages.
func (p *Pipeline) sortedTaskNames() []string {
	var out []string
	for _, t := range p.Tasks {
		out = append(out, t.Name)
	}
	for _, t := range p.Finally {
		out = append(out, t.Name)
	}
	sort.Strings(out)
	return out
}

// parseControlFlow reads a task's when, for_each and parallelism.
func parseControlFlow(d *diag.List, v *yamlnode.Node, t *Task) {
	if w := v.Get("when"); w != nil {
		if w.Kind != yamlnode.String || strings.TrimSpace(w.Str) == "" {
			d.Node(w, "when must be a CEL expression such as tasks.evaluate.outputs.accuracy >= inputs.threshold")
		} else {
			t.When, t.WhenPos = strings.TrimSpace(w.Str), w.Pos
			// Allow ${{ }} around the whole expression too.
			if m := refPattern.FindStringSubmatch(t.When); m != nil && m[0] == t.When {
				t.When = m[1]
			}
		}
	}
	if fe := v.Get("for_each"); fe != nil {
		val := parseValue(d, fe)
		if val != nil {
			switch {
			case val.Ref != nil:
				if val.Ref.Kind != RefInput && val.Ref.Kind != RefTask {
					d.Node(fe, "for_each must be a list, ${{ inputs.NAME }} or ${{ tasks.NAME.outputs.NAME }}")
				}
			case val.Template != nil:
				d.Node(fe, "for_each must be a list or a single reference, not a string template")
			default:
				if _, ok := val.Literal.([]any); !ok {
					d.Node(fe, "for_each must be a list, not a %s", fe.Kind)
					val = nil
				}
			}
			t.ForEach = val
		}
	}
	if pn := v.Get("parallelism"); pn != nil {
		if pn.Kind != yamlnode.Int || pn.Int < 0 || pn.Int > 1<<31-1 {
			d.Node(pn, "parallelism must be a non-negative integer")
		} else {
			t.Parallelism = int(pn.Int)
		}
		if v.Get("for_each") == nil {
			d.Node(pn, "parallelism needs for_each")
		}
	}
}

// parseEnv reads a task's env.
func parseEnv(d *diag.List, v *yamlnode.Node, t *Task) {
	if en := v.Get("env"); en != nil && en.Kind != yamlnode.Null {
		if expectMap(d, en, "env") {
			for i, ek := range en.Keys {
				ev := en.Vals[i]
				if ev.Kind == yamlnode.Map || ev.Kind == yamlnode.Seq || ev.Kind == yamlnode.Null {
					d.Node(ev, "env %s: value must be a string", ek.Str)
					continue
				}
				if !envName.MatchString(ek.Str) {
					d.Node(ek, "env name %q must match [A-Za-z_][A-Za-z0-9_]*", ek.Str)
					continue
				}
				t.Env = append(t.Env, kfpir.EnvVar{Name: ek.Str, Value: ev.Text()})
			}
		}
	}
}
