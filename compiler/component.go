package compiler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/internal/yamlnode"
	"github.com/mlpipe/mlpipe/kfpir"
)

// Param is an input or output of a component or pipeline.
type Param struct {
	Name        string
	Type        Type
	Default     any // JSON-like value; valid when HasDefault
	HasDefault  bool
	Optional    bool
	Description string
	Pos         yamlnode.Pos
}

// Component is a loaded component: a KFP component.yaml, a component or
// pipeline compiled by the KFP SDK (IR), or a pipeline.yaml used as a
// sub-pipeline.
type Component struct {
	Name        string
	Description string
	File        string // absolute path of the file it came from
	Dir         string // directory of File
	Dockerfile  string // Dir/Dockerfile when the component directory has one
	Inputs      []*Param
	Outputs     []*Param

	Container *ContainerImpl // component.yaml
	IR        *kfpir.IR      // SDK-compiled IR (a component or a whole pipeline)
	Pipeline  *Pipeline      // pipeline.yaml
}

// IsDAG reports whether the component is a pipeline (a DAG) rather than a
// single container.
func (c *Component) IsDAG() bool {
	return c.Pipeline != nil || (c.IR != nil && singleExecutorTask(c.IR) == "")
}

// Input returns the named input, or nil.
func (c *Component) Input(name string) *Param { return findParam(c.Inputs, name) }

// Output returns the named output, or nil.
func (c *Component) Output(name string) *Param { return findParam(c.Outputs, name) }

func findParam(ps []*Param, name string) *Param {
	for _, p := range ps {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// ContainerImpl is implementation.container of a component.yaml, with the
// command and args already converted to IR placeholder strings.
type ContainerImpl struct {
	Image   string
	Command []string
	Args    []string
	Env     []kfpir.EnvVar
}

var nameSanitizer = regexp.MustCompile(`[^a-z0-9]+`)

// SanitizeInputName maps a component input or output name to the form the
// KFP SDK uses in IR: lower case, runs of other characters replaced by "_".
func SanitizeInputName(s string) string {
	return strings.Trim(nameSanitizer.ReplaceAllString(strings.ToLower(s), "_"), "_")
}

// SanitizeName maps a task or component name to the form the KFP SDK uses:
// lower case, runs of other characters replaced by "-".
func SanitizeName(s string) string {
	return strings.Trim(nameSanitizer.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// LoadComponent loads a component from a path: a directory holding
// component.yaml (or pipeline.yaml), a component.yaml file, an IR file
// compiled by the KFP SDK, or a pipeline.yaml.
func LoadComponent(path string) (*Component, error) {
	return newLoader().component(path, nil)
}

// loader loads the components of one pipeline, each file once.
type loader struct {
	cache map[string]*Component
	errs  map[string]error
}

func newLoader() *loader {
	return &loader{cache: map[string]*Component{}, errs: map[string]error{}}
}

func (l *loader) component(path string, stack []string) (*Component, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	for _, s := range stack {
		if s == abs || s == filepath.Join(abs, "pipeline.yaml") {
			return l.load(path, stack)
		}
	}
	if c, ok := l.cache[abs]; ok {
		return c, nil
	}
	if err, ok := l.errs[abs]; ok {
		return nil, err
	}
	c, err := l.load(path, stack)
	if err != nil {
		l.errs[abs] = err
		return nil, err
	}
	l.cache[abs] = c
	return c, nil
}

func (l *loader) load(path string, stack []string) (*Component, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	dir := abs
	if st.IsDir() {
		found := ""
		for _, n := range []string{"component.yaml", "component.yml", "pipeline.yaml", "pipeline.yml"} {
			if _, err := os.Stat(filepath.Join(abs, n)); err == nil {
				found = filepath.Join(abs, n)
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%s: no component.yaml or pipeline.yaml in the directory", path)
		}
		abs = found
	} else {
		dir = filepath.Dir(abs)
	}
	for _, s := range stack {
		if s == abs {
			return nil, fmt.Errorf("%s: pipeline includes itself (%s)", path, strings.Join(append(stack, abs), " -> "))
		}
	}
	src, err := kfpir.ReadSource(abs)
	if err != nil {
		return nil, err
	}
	kind, err := DetectKind(abs, src)
	if err != nil {
		return nil, err
	}
	var c *Component
	switch kind {
	case KindComponent:
		c, err = ParseComponent(abs, src)
	case KindPipeline:
		var p *Pipeline
		p, err = l.parsePipeline(abs, src, append(stack, abs))
		if err == nil {
			c = p.AsComponent()
		}
	case KindIR:
		var ir *kfpir.IR
		ir, err = kfpir.LoadIRBytes(abs, src)
		if err == nil {
			c = componentFromIR(ir)
		}
	}
	if err != nil {
		return nil, err
	}
	c.File = abs
	c.Dir = dir
	if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err == nil && kind == KindComponent {
		c.Dockerfile = filepath.Join(dir, "Dockerfile")
	}
	return c, nil
}

// Kind is the kind of a file mlpipe reads.
type Kind int

// File kinds.
const (
	KindUnknown Kind = iota
	KindPipeline
	KindComponent
	KindIR
)

func (k Kind) String() string {
	return [...]string{"unknown", "pipeline", "component", "KFP IR"}[k]
}

// DetectKind tells a pipeline.yaml, a component.yaml and KFP IR apart by
// their top-level keys.
func DetectKind(file string, src []byte) (Kind, error) {
	trimmed := bytes.TrimSpace(src)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		// JSON, or a YAML flow mapping: the YAML parser below reads both,
		// this is the fast path for JSON.
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &probe); err == nil {
			for _, k := range []string{"root", "pipelineSpec", "pipeline_spec", "deploymentSpec"} {
				if _, ok := probe[k]; ok {
					return KindIR, nil
				}
			}
			if _, ok := probe["implementation"]; ok {
				return KindComponent, nil
			}
			if _, ok := probe["tasks"]; ok {
				return KindPipeline, nil
			}
			return KindUnknown, diag.Diagnostics{{File: file, Msg: "JSON file is not KFP IR (no root or pipelineSpec)"}}
		}
	}
	if k, ok := quickKind(src); ok {
		return k, nil
	}
	docs, err := yamlnode.ParseAll(src)
	if err != nil {
		return KindUnknown, diag.YAMLError(file, err)
	}
	n := docs[0]
	if n.Kind != yamlnode.Map {
		return KindUnknown, diag.Diagnostics{{File: file, Pos: n.Pos, Msg: "expected a mapping at the top level"}}
	}
	switch {
	case n.Get("root") != nil || n.Get("pipelineSpec") != nil || n.Get("deploymentSpec") != nil:
		return KindIR, nil
	case n.Get("implementation") != nil:
		return KindComponent, nil
	case n.Get("tasks") != nil:
		return KindPipeline, nil
	}
	return KindUnknown, diag.Diagnostics{{File: file, Pos: n.Pos, Msg: "not a pipeline (no tasks:), a component (no implementation:) or KFP IR (no root:)"}}
}

// quickKind tells the kind of a block-style YAML document from its
// top-level keys without parsing it (a large pipeline would otherwise be
// parsed twice). It gives up (ok false) on anything it cannot read for
// certain: flow style, quoted or complex keys, merge keys; the parser then
// decides.
func quickKind(src []byte) (k Kind, ok bool) {
	keys := map[string]bool{}
	docs := 0
	for line := range bytes.Lines(src) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' || line[0] == '#' {
			continue
		}
		if bytes.HasPrefix(line, []byte("---")) && (len(line) == 3 || line[3] == ' ') {
			if docs++; docs > 1 || len(keys) > 0 {
				break // the first document decides
			}
			continue
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || (i+1 < len(line) && line[i+1] != ' ') {
			return KindUnknown, false
		}
		key := line[:i]
		for _, c := range key {
			if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return KindUnknown, false
			}
		}
		keys[string(key)] = true
	}
	switch {
	case keys["root"] || keys["pipelineSpec"] || keys["deploymentSpec"]:
		return KindIR, true
	case keys["implementation"]:
		return KindComponent, true
	case keys["tasks"]:
		return KindPipeline, true
	}
	return KindUnknown, false
}

// ParseComponent parses a KFP component.yaml.
func ParseComponent(file string, src []byte) (*Component, error) {
	d := &diag.List{File: file}
	n, err := yamlnode.Parse(src)
	if err != nil {
		return nil, diag.YAMLError(file, err)
	}
	c := parseComponentNode(d, n)
	if err := d.Err(); err != nil {
		return nil, err
	}
	c.File = file
	return c, nil
}

func parseComponentNode(d *diag.List, n *yamlnode.Node) *Component {
	c := &Component{}
	if !expectMap(d, n, "component") {
		return c
	}
	checkKeys(d, n, "component", "name", "description", "inputs", "outputs", "implementation", "metadata")
	c.Name = str(d, n.Get("name"), "name")
	if c.Name == "" {
		d.Node(n, "component has no name")
	}
	c.Description = str(d, n.Get("description"), "description")
	c.Inputs = parseComponentParams(d, n.Get("inputs"), "inputs", true)
	c.Outputs = parseComponentParams(d, n.Get("outputs"), "outputs", false)

	impl := n.Get("implementation")
	if impl == nil {
		d.Node(n, "component has no implementation")
		return c
	}
	if !expectMap(d, impl, "implementation") {
		return c
	}
	checkKeys(d, impl, "implementation", "container", "graph")
	if impl.Get("graph") != nil {
		d.Node(impl.Get("graph"), "graph components (KFP v1) are not supported; write a pipeline.yaml instead")
		return c
	}
	ct := impl.Get("container")
	if ct == nil {
		d.Node(impl, "implementation has no container")
		return c
	}
	if !expectMap(d, ct, "container") {
		return c
	}
	checkKeys(d, ct, "container", "image", "command", "args", "env", "fileOutputs")
	if ct.Get("fileOutputs") != nil {
		d.Node(ct.Get("fileOutputs"), "fileOutputs (KFP v1) are not supported; use {outputPath: NAME} in args")
	}
	impl2 := &ContainerImpl{Image: str(d, ct.Get("image"), "image")}
	if impl2.Image == "" {
		d.Node(ct, "container has no image")
	}
	usage := map[string]string{} // input name -> how it is used (value, path, uri)
	conv := &argConverter{d: d, c: c, usage: usage}
	impl2.Command = conv.list(ct.Get("command"), "command")
	impl2.Args = conv.list(ct.Get("args"), "args")
	if env := ct.Get("env"); env != nil {
		if expectMap(d, env, "env") {
			for i, k := range env.Keys {
				v := env.Vals[i]
				if v.Kind == yamlnode.Map || v.Kind == yamlnode.Seq {
					d.Node(v, "env %s: value must be a string", k.Str)
					continue
				}
				impl2.Env = append(impl2.Env, kfpir.EnvVar{Name: k.Str, Value: v.Text()})
			}
		}
	}
	// Inputs consumed as files or URIs are artifacts, as the KFP SDK decides.
	for _, in := range c.Inputs {
		if u := usage[in.Name]; (u == "path" || u == "uri") && !in.Type.IsArtifact() {
			in.Type = Type{Artifact: "system.Artifact", SchemaVersion: "0.0.1"}
			in.HasDefault, in.Default = false, nil
		}
	}
	c.Container = impl2
	return c
}

func parseComponentParams(d *diag.List, n *yamlnode.Node, what string, inputs bool) []*Param {
	if n == nil || n.Kind == yamlnode.Null {
		return nil
	}
	if n.Kind != yamlnode.Seq {
		d.Node(n, "%s must be a list of {name, type}", what)
		return nil
	}
	var out []*Param
	seen := map[string]bool{}
	for _, it := range n.Items {
		if !expectMap(d, it, what+" entry") {
			continue
		}
		if inputs {
			checkKeys(d, it, what+" entry", "name", "type", "description", "default", "optional", "annotations")
		} else {
			checkKeys(d, it, what+" entry", "name", "type", "description", "annotations")
		}
		raw := str(d, it.Get("name"), "name")
		if raw == "" {
			d.Node(it, "%s entry has no name", what)
			continue
		}
		name := SanitizeInputName(raw)
		if name == "" {
			d.Node(it.Get("name"), "name %q has no letters or digits", raw)
			continue
		}
		if seen[name] {
			d.Node(it.Get("name"), "duplicate %s name %q", strings.TrimSuffix(what, "s"), raw)
			continue
		}
		seen[name] = true
		p := &Param{Name: name, Pos: it.Pos, Description: str(d, it.Get("description"), "description")}
		typeNode := it.Get("type")
		switch {
		case typeNode == nil || typeNode.Kind == yamlnode.Null:
			p.Type = Type{Param: pb.ParameterType_STRING}
		case typeNode.Kind == yamlnode.String:
			p.Type, _ = ParseTypeName(typeNode.Str)
		case typeNode.Kind == yamlnode.Map:
			// KFP v1 typed schemas such as {GCSPath: {...}}: a generic artifact.
			p.Type = Type{Artifact: "system.Artifact", SchemaVersion: "0.0.1"}
		default:
			d.Node(typeNode, "type must be a name such as String or Dataset")
		}
		if o := it.Get("optional"); o != nil {
			if o.Kind != yamlnode.Bool {
				d.Node(o, "optional must be true or false")
			}
			p.Optional = o.Bool
		}
		if def := it.Get("default"); def != nil {
			if p.Type.IsArtifact() {
				d.Node(def, "artifact input %q cannot have a default", raw)
			} else {
				v, err := defaultValue(p.Type.Param, def)
				if err != nil {
					d.Node(def, "default of %q: %v", raw, err)
				} else {
					p.Default, p.HasDefault = v, true
					p.Optional = true
				}
			}
		}
		if p.Type.Param == pb.ParameterType_TASK_FINAL_STATUS && !inputs {
			d.Node(typeNode, "PipelineTaskFinalStatus can only be an input type")
		}
		out = append(out, p)
	}
	return out
}

// defaultValue converts a default from YAML. component.yaml files written
// for KFP v1 give defaults as strings ("10"); they are parsed by type.
func defaultValue(t pb.ParameterType_ParameterTypeEnum, n *yamlnode.Node) (any, error) {
	if n.Kind == yamlnode.Null {
		return nil, nil
	}
	v := n.Value()
	if s, ok := v.(string); ok && t != pb.ParameterType_STRING {
		return kfpir.ParseParamValue(t, s)
	}
	return kfpir.CheckValue(t, v)
}

// argConverter converts component.yaml command/args entries (strings and
// placeholder mappings) into IR strings.
type argConverter struct {
	d     *diag.List
	c     *Component
	usage map[string]string
}

func (a *argConverter) list(n *yamlnode.Node, what string) []string {
	if n == nil || n.Kind == yamlnode.Null {
		return nil
	}
	if n.Kind != yamlnode.Seq {
		a.d.Node(n, "%s must be a list", what)
		return nil
	}
	out := []string{}
	for _, it := range n.Items {
		v, ok := a.convert(it, 0)
		if !ok {
			continue
		}
		s, isStr := v.(string)
		if !isStr {
			s = jsonString(v)
		}
		out = append(out, s)
	}
	return out
}

// convert returns a string (a plain or placeholder argument) or a
// structural placeholder object (IfPresent/Concat) as a Go map.
func (a *argConverter) convert(n *yamlnode.Node, depth int) (any, bool) {
	if depth > 16 {
		a.d.Node(n, "placeholders nested too deeply")
		return nil, false
	}
	switch n.Kind {
	case yamlnode.String, yamlnode.Int, yamlnode.Float, yamlnode.Bool:
		return n.Text(), true
	case yamlnode.Map:
	default:
		a.d.Node(n, "argument must be a string or a placeholder such as {inputValue: NAME}")
		return nil, false
	}
	if len(n.Keys) != 1 {
		a.d.Node(n, "a placeholder has exactly one key (inputValue, inputPath, outputPath, inputUri, outputUri, executorInput, if, concat)")
		return nil, false
	}
	key, val := n.Keys[0].Str, n.Vals[0]
	switch key {
	case "inputValue", "inputPath", "inputUri":
		name := a.inputRef(val)
		if name == "" {
			return nil, false
		}
		switch key {
		case "inputValue":
			a.use(name, "value", val)
			return fmt.Sprintf("{{$.inputs.parameters['%s']}}", name), true
		case "inputPath":
			a.use(name, "path", val)
			return fmt.Sprintf("{{$.inputs.artifacts['%s'].path}}", name), true
		default:
			a.use(name, "uri", val)
			return fmt.Sprintf("{{$.inputs.artifacts['%s'].uri}}", name), true
		}
	case "outputPath", "outputUri":
		raw := val.Text()
		name := SanitizeInputName(raw)
		out := a.c.Output(name)
		if val.Kind != yamlnode.String || out == nil {
			a.d.Node(val, "%s refers to %q, which is not an output of the component", key, raw)
			return nil, false
		}
		if key == "outputUri" {
			if !out.Type.IsArtifact() {
				a.d.Node(val, "outputUri needs an artifact output; %q is a %s parameter", raw, out.Type)
				return nil, false
			}
			return fmt.Sprintf("{{$.outputs.artifacts['%s'].uri}}", name), true
		}
		if out.Type.IsArtifact() {
			return fmt.Sprintf("{{$.outputs.artifacts['%s'].path}}", name), true
		}
		return fmt.Sprintf("{{$.outputs.parameters['%s'].output_file}}", name), true
	case "executorInput":
		return "{{$}}", true
	case "concat":
		if val.Kind != yamlnode.Seq {
			a.d.Node(val, "concat needs a list")
			return nil, false
		}
		items := []any{}
		for _, it := range val.Items {
			v, ok := a.convert(it, depth+1)
			if !ok {
				return nil, false
			}
			items = append(items, v)
		}
		return map[string]any{"Concat": items}, true
	case "if":
		if val.Kind != yamlnode.Map {
			a.d.Node(val, "if needs {cond: {isPresent: NAME}, then: [...], else: [...]}")
			return nil, false
		}
		checkKeys(a.d, val, "if", "cond", "then", "else")
		cond := val.Get("cond")
		if cond == nil || cond.Kind != yamlnode.Map || cond.Get("isPresent") == nil || len(cond.Keys) != 1 {
			a.d.Node(val, "if: only cond: {isPresent: NAME} is supported")
			return nil, false
		}
		name := a.inputRef(cond.Get("isPresent"))
		if name == "" {
			return nil, false
		}
		obj := map[string]any{"InputName": name}
		for _, br := range []struct{ key, out string }{{"then", "Then"}, {"else", "Else"}} {
			bn := val.Get(br.key)
			if bn == nil {
				if br.key == "then" {
					a.d.Node(val, "if has no then")
					return nil, false
				}
				continue
			}
			if bn.Kind == yamlnode.Seq {
				items := []any{}
				for _, it := range bn.Items {
					v, ok := a.convert(it, depth+1)
					if !ok {
						return nil, false
					}
					items = append(items, v)
				}
				obj[br.out] = items
			} else {
				v, ok := a.convert(bn, depth+1)
				if !ok {
					return nil, false
				}
				obj[br.out] = v
			}
		}
		return map[string]any{"IfPresent": obj}, true
	}
	a.d.Node(n.Keys[0], "unknown placeholder %q (want inputValue, inputPath, outputPath, inputUri, outputUri, executorInput, if or concat)", key)
	return nil, false
}

func (a *argConverter) inputRef(val *yamlnode.Node) string {
	raw := val.Text()
	name := SanitizeInputName(raw)
	if val.Kind != yamlnode.String || a.c.Input(name) == nil {
		a.d.Node(val, "%q is not an input of the component", raw)
		return ""
	}
	return name
}

func (a *argConverter) use(name, how string, at *yamlnode.Node) {
	prev, ok := a.usage[name]
	if ok && prev != how && (prev == "value" || how == "value") {
		a.d.Node(at, "input %q is used both as a value and as a file or URI", name)
	}
	a.usage[name] = how
	in := a.c.Input(name)
	if how == "value" && in.Type.IsArtifact() {
		a.d.Node(at, "inputValue needs a parameter input; %q is an artifact (%s): use inputPath or inputUri", name, in.Type)
	}
}
